"""Fetch a media input named by reference, without becoming an SSRF proxy.

A reference is one of:

- this studio's own file URL, ``/files/{key}`` (or ``{public_url}/files/{key}``);
- a storage key under the seed layout (``inputs/images/....png``);
- an ``https`` URL whose host is on the allow-list (``STUDIO_FETCH_ALLOWED_HOSTS``; an
  entry ``.example.com`` allows its subdomains).

For URLs every resolved address must be public (no loopback, private, link-local — which
covers cloud metadata at 169.254.169.254 —, multicast, reserved or unspecified addresses,
IPv4-mapped forms included). The connection goes to the address that was checked (the name
is kept for TLS and the Host header), so DNS cannot be swapped between check and use.
Redirects are followed by hand, at most three, each re-checked. Size and time are capped.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from models.errors import InvalidInput, NotFound, PayloadTooLarge, TransientBackendError

Resolver = Callable[[str, int], list[str]]
KEY_PREFIXES = ("inputs/", "processed/", "voices/", "prosody/", "bgm/", "videos/", "temp/")
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Fetched:
    data: bytes
    filename: str | None
    content_type: str | None
    source: str  # "storage" | "url"


def _bad(reason: str, message: str, message_ja: str, area: str, **details: object) -> InvalidInput:
    return InvalidInput(message, code=f"{area}_INVALID_URL", message_ja=message_ja,
                        details={"reason": reason, **details})


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    return sorted({info[4][0] for info in infos})


def is_public_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if mapped is not None:
            return is_public_address(str(mapped))
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local
                                 or ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().strip().rstrip(".")
        if not entry:
            continue
        if entry.startswith("."):
            if host.endswith(entry) and host != entry[1:]:
                return True
        elif host == entry:
            return True
    return False


def storage_key_of(reference: str, public_url: str | None = None) -> str | None:
    """The storage key a reference names, or None when it is a (foreign) URL."""
    ref = reference.strip()
    if public_url and ref.startswith(public_url.rstrip("/") + "/files/"):
        return ref[len(public_url.rstrip("/")) + len("/files/"):]
    if ref.startswith("/files/"):
        return ref[len("/files/"):]
    if "://" not in ref and ref.startswith(KEY_PREFIXES):
        return ref
    return None


class SafeFetcher:
    """Resolves references to bytes: storage first, then allow-listed public https URLs."""

    def __init__(self, storage: object, *, allowed_hosts: Sequence[str] = (),
                 public_url: str | None = None, timeout: float = 20.0,
                 resolver: Resolver = system_resolver,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.storage = storage
        self.allowed_hosts = list(allowed_hosts)
        self.public_url = public_url
        self.timeout = timeout
        self.resolver = resolver
        self.transport = transport

    def fetch(self, reference: str, *, max_bytes: int, area: str = "VIDEO") -> Fetched:
        if not isinstance(reference, str) or not reference.strip():
            raise _bad("empty", "No input URL was given.", "入力 URL が指定されていません。", area)
        if len(reference) > 2048 or any(ord(ch) < 32 for ch in reference):
            raise _bad("malformed", "The input URL is malformed.", "入力 URL の形式が不正です。",
                       area)
        key = storage_key_of(reference, self.public_url)
        if key is not None:
            return self._from_storage(key, max_bytes, area)
        return self._from_url(reference.strip(), max_bytes, area)

    def _from_storage(self, key: str, max_bytes: int, area: str) -> Fetched:
        from app.storage import validate_key

        validate_key(key)
        if not self.storage.exists(key):  # type: ignore[attr-defined]
            raise NotFound(f"No stored file {key!r}.", code=f"{area}_INPUT_NOT_FOUND",
                           message_ja=f"ファイル {key!r} が見つかりません。", details={"key": key})
        data = self.storage.get(key)  # type: ignore[attr-defined]
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"The input is larger than {max_bytes // 1_000_000} MB.",
                                  code=f"{area}_INPUT_TOO_LARGE",
                                  message_ja="入力ファイルが大きすぎます。",
                                  details={"max_bytes": max_bytes})
        return Fetched(data, key.rsplit("/", 1)[-1], None, "storage")

    def check_url(self, url: str, area: str = "VIDEO") -> tuple[str, int, str]:
        """Validate a URL; returns (host, port, checked public address)."""
        try:
            parts = urlsplit(url)
            port = parts.port or 443
        except ValueError:
            raise _bad("malformed", "The input URL is malformed.", "入力 URL の形式が不正です。",
                       area) from None
        if parts.scheme.lower() != "https":
            raise _bad("scheme", "Only https URLs (or this studio's /files/... URLs) are "
                       "accepted.", "https の URL（またはこのスタジオの /files/...）のみ使えます。",
                       area, scheme=parts.scheme)
        if parts.username or parts.password:
            raise _bad("credentials", "URLs with credentials are not accepted.",
                       "認証情報を含む URL は使えません。", area)
        host = (parts.hostname or "").lower()
        if not host:
            raise _bad("malformed", "The input URL has no host.", "URL にホストがありません。",
                       area)
        if not host_allowed(host, self.allowed_hosts):
            raise _bad("host_not_allowed", f"The host {host!r} is not on the allow-list "
                       "(STUDIO_FETCH_ALLOWED_HOSTS).",
                       f"ホスト {host!r} は許可リストにありません。", area, host=host)
        addresses = self.resolver(host, port)
        if not addresses:
            raise _bad("unresolvable", f"The host {host!r} cannot be resolved.",
                       f"ホスト {host!r} を解決できません。", area, host=host)
        blocked = [a for a in addresses if not is_public_address(a)]
        if blocked:
            raise _bad("private_address", f"The host {host!r} resolves to a non-public "
                       "address; refused.", f"ホスト {host!r} は非公開アドレスを指しています。",
                       area, host=host)
        return host, port, addresses[0]

    def _from_url(self, url: str, max_bytes: int, area: str) -> Fetched:
        deadline = time.monotonic() + self.timeout
        current = url
        with httpx.Client(transport=self.transport, timeout=self.timeout,
                          follow_redirects=False, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                host, port, address = self.check_url(current, area)
                parts = urlsplit(current)
                ip_host = f"[{address}]" if ":" in address else address
                pinned = parts._replace(netloc=f"{ip_host}:{port}").geturl()
                try:
                    with client.stream(
                        "GET", pinned, headers={"Host": parts.netloc.rsplit("@", 1)[-1]},
                        extensions={"sni_hostname": host},
                    ) as response:
                        if response.is_redirect:
                            location = response.headers.get("location", "")
                            current = urljoin(current, location)
                            continue
                        if response.status_code != 200:
                            raise _bad("http_status", f"The input URL answered HTTP "
                                       f"{response.status_code}.",
                                       f"入力 URL が HTTP {response.status_code} を返しました。",
                                       area, status=response.status_code)
                        declared = int(response.headers.get("content-length") or 0)
                        if declared > max_bytes:
                            raise self._too_large(max_bytes, area)
                        chunks: list[bytes] = []
                        size = 0
                        for chunk in response.iter_bytes():
                            size += len(chunk)
                            if size > max_bytes:
                                raise self._too_large(max_bytes, area)
                            if time.monotonic() > deadline:
                                raise TransientBackendError(
                                    "Downloading the input took too long.",
                                    code=f"{area}_INPUT_TIMEOUT",
                                    message_ja="入力のダウンロードに時間がかかりすぎました。")
                            chunks.append(chunk)
                        name = parts.path.rsplit("/", 1)[-1] or None
                        return Fetched(b"".join(chunks), name,
                                       response.headers.get("content-type"), "url")
                except httpx.HTTPError as exc:
                    raise TransientBackendError(
                        f"The input URL could not be fetched: {type(exc).__name__}.",
                        code=f"{area}_INPUT_UNREACHABLE",
                        message_ja="入力 URL を取得できませんでした。") from exc
        raise _bad("redirects", "The input URL redirects too many times.",
                   "入力 URL のリダイレクトが多すぎます。", area)

    @staticmethod
    def _too_large(max_bytes: int, area: str) -> PayloadTooLarge:
        return PayloadTooLarge(f"The input is larger than {max_bytes // 1_000_000} MB.",
                               code=f"{area}_INPUT_TOO_LARGE",
                               message_ja="入力ファイルが大きすぎます。",
                               details={"max_bytes": max_bytes})
