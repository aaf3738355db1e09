"""Fetch a media input named by reference, without becoming an SSRF proxy.

A reference is one of:

- this studio's own file URL, ``/files/{key}`` (or ``{public_url}/files/{key}``);
- a storage key under the seed layout (``inputs/images/....png``);
- an ``https`` URL whose host is on the allow-list (``STUDIO_FETCH_ALLOWED_HOSTS``; an
  entry ``.example.com`` allows its subdomains).

URLs go through :class:`models.net.SafeHttp` — the one implementation of the outbound rules
(public addresses only, pinned connection, redirects re-checked, size and time capped),
shared with the D-ID result download. Storage references never reach a voice profile's
private files (its reference recording and embedding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx

from models.errors import NotFound, PayloadTooLarge
from models.net import (
    Fetched,
    OutboundRules,
    Resolver,
    SafeHttp,
    host_allowed,
    is_public_address,
    refused,
    system_resolver,
)
from pipelines.voice.ref import PROFILE_PREFIXES

KEY_PREFIXES = ("inputs/", "processed/", "voices/", "prosody/", "bgm/", "videos/", "temp/")
PRIVATE_PREFIXES = tuple(f"voices/openvoice/{prefix}" for prefix in PROFILE_PREFIXES)
"""Voice profiles' folders (new ``voice_`` ids and older ``openvoice_`` ones): owner-only."""

__all__ = ["Fetched", "SafeFetcher", "host_allowed", "is_public_address", "is_private_key",
           "storage_key_of", "system_resolver"]


def is_private_key(key: str) -> bool:
    """Keys that only their owner's pipeline may read (never by reference)."""
    return key.lstrip("/").startswith(PRIVATE_PREFIXES)


def storage_key_of(reference: str, public_url: str | None = None) -> str | None:
    """The storage key a reference names, or None when it is a (foreign) URL."""
    ref = reference.strip()
    if public_url and ref.startswith(public_url.rstrip("/") + "/files/"):
        return ref[len(public_url.rstrip("/")) + len("/files/"):].split("?", 1)[0]
    if ref.startswith("/files/"):
        return ref[len("/files/"):].split("?", 1)[0]
    if "://" not in ref and ref.startswith(KEY_PREFIXES):
        return ref
    return None


class StoredFiles(Protocol):
    """The part of the studio's storage a fetcher reads."""

    def exists(self, key: str) -> bool: ...
    def get(self, key: str) -> bytes: ...


class SafeFetcher:
    """Resolves references to bytes: storage first, then allow-listed public https URLs."""

    def __init__(self, storage: StoredFiles, *, allowed_hosts: Sequence[str] = (),
                 public_url: str | None = None, timeout: float = 20.0,
                 resolver: Resolver = system_resolver,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.storage = storage
        self.public_url = public_url
        self.http = SafeHttp(OutboundRules(allowed_hosts=tuple(allowed_hosts), timeout=timeout),
                             resolver=resolver, transport=transport)

    def fetch(self, reference: str, *, max_bytes: int, area: str = "VIDEO") -> Fetched:
        if not reference.strip():
            raise refused("empty", "No input URL was given.", "入力 URL が指定されていません。",
                          area)
        if len(reference) > 2048 or any(ord(ch) < 32 for ch in reference):
            raise refused("malformed", "The input URL is malformed.", "入力 URL の形式が不正です。",
                          area)
        key = storage_key_of(reference, self.public_url)
        if key is not None:
            return self._from_storage(key, max_bytes, area)
        return self.http.stream(reference.strip(), max_bytes=max_bytes, area=area)

    def check_url(self, url: str, area: str = "VIDEO") -> tuple[str, int, str | None]:
        """Validate a URL; returns (host, port, checked public address)."""
        target = self.http.check(url, area)
        return target.host, target.port, target.address

    def _from_storage(self, key: str, max_bytes: int, area: str) -> Fetched:
        from app.storage import validate_key

        validate_key(key)
        if is_private_key(key) or not self.storage.exists(key):
            raise NotFound(f"No stored file {key!r}.", code=f"{area}_INPUT_NOT_FOUND",
                           message_ja=f"ファイル {key!r} が見つかりません。", details={"key": key})
        data = self.storage.get(key)
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"The input is larger than {max_bytes // 1_000_000} MB.",
                                  code=f"{area}_INPUT_TOO_LARGE",
                                  message_ja="入力ファイルが大きすぎます。",
                                  details={"max_bytes": max_bytes})
        return Fetched(data, key.rsplit("/", 1)[-1], None, "storage")


