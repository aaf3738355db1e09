"""Voice profiles in storage: ``voices/openvoice/{profile_id}/{profile.json, reference.wav,
embedding.npy}``.

``profile.json`` is written last and deleted first, so a half-written or half-deleted profile
is never listed. New ids start ``voice_``; ids of profiles made before start ``openvoice_`` and
keep working. The ``voices/openvoice/`` folder keeps its name: it is where every stored profile
already lives.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

import numpy as np

from models.base import Audio, MatchingCalibration
from models.errors import InvalidInput, NotFound
from pipelines.media import decode_audio, encode_wav
from pipelines.voice.ref import PROFILE_ID, new_profile_id

PROFILE_ROOT = "voices/openvoice"
NAME_MAX = 80


class ProfileStorage(Protocol):
    """The part of ``app.storage.Storage`` the profile store needs to read and write one
    profile (a job's storage offers no more)."""

    def put(self, key: str, data: bytes) -> str: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> bool: ...


@runtime_checkable
class ListingStorage(ProfileStorage, Protocol):
    """Storage that can also list its keys (needed to list profiles)."""

    def list(self, prefix: str = "") -> Iterator[Any]: ...


_KNOWN = ("id", "name", "language", "created_at", "updated_at", "engine", "encoder",
          "embedding_dim", "denoised", "sample_stats", "matching", "owner", "voice_source",
          "evolution", "serving")
EVOLVED_FILE = "evolved.npz"
CHECKPOINT_FILE = "evolve_checkpoint.npz"
EVOLVED_FILES = (EVOLVED_FILE, CHECKPOINT_FILE)
"""A profile's evolved voice and its search checkpoint (see pipelines.voice.evolved)."""


@dataclass
class Profile:
    """One voice profile. ``sample_stats`` is the clips' record as shown to people;
    ``extra`` keeps fields this version does not know, so rewriting a profile (rename)
    loses nothing a newer version stored."""

    id: str
    name: str
    language: str
    created_at: str
    updated_at: str
    encoder: str = ""
    embedding_dim: int = 0
    denoised: bool = False
    sample_stats: dict[str, Any] = field(default_factory=dict)
    matching: MatchingCalibration | None = None
    owner: str | None = None
    engine: str = "openvoice"
    """The stored format's historical name (profiles began as OpenVoice targets), kept
    because stored profiles and API clients carry it; which voice serves is
    ``voice_source``, and which converter ran is in each synthesis report."""
    voice_source: str = "matched"
    """Which voice serves the profile: "matched" (the quick match: a built-in voice and
    voice matching) or "evolved" (its own Kokoro style, found by the background search)."""
    evolution: dict[str, Any] | None = None
    """The last style search's record (scores, iterations, which language each voice
    serves), as stored and shown by the API."""
    serving: dict[str, dict[str, Any]] | None = None
    """Per language: which voice, converter and strength serve the quick match, their
    nearness, naturalness and words scores, and every candidate measured
    (:mod:`pipelines.voice.serving`). None for a profile made before it was measured."""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The stored JSON (``owner`` only when made by a signed-in user)."""
        out: dict[str, Any] = {
            "id": self.id, "name": self.name, "language": self.language,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "engine": self.engine, "encoder": self.encoder,
            "embedding_dim": self.embedding_dim, "denoised": self.denoised,
            "sample_stats": self.sample_stats,
            "matching": self.matching.as_dict() if self.matching else None,
        }
        if self.owner is not None:
            out["owner"] = self.owner
        out["voice_source"] = self.voice_source
        if self.evolution is not None:
            out["evolution"] = self.evolution
        if self.serving is not None:
            out["serving"] = self.serving
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        return cls(
            id=str(data["id"]), name=str(data.get("name", "")),
            language=str(data.get("language", "ja")),
            created_at=str(data.get("created_at", "")),
            updated_at=str(data.get("updated_at", "")),
            encoder=str(data.get("encoder", "")),
            embedding_dim=int(data.get("embedding_dim") or 0),
            denoised=bool(data.get("denoised", False)),
            sample_stats=dict(data.get("sample_stats") or {}),
            matching=MatchingCalibration.from_dict(data.get("matching")),
            owner=data.get("owner"), engine=str(data.get("engine", "openvoice")),
            voice_source=str(data.get("voice_source") or "matched"),
            evolution=dict(data["evolution"]) if isinstance(data.get("evolution"), dict)
            else None,
            serving={str(k): dict(v) for k, v in data["serving"].items() if isinstance(v, dict)}
            if isinstance(data.get("serving"), dict) else None,
            extra={k: v for k, v in data.items()
                   if k not in _KNOWN and k != "embedding_vector"})


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _not_found(profile_id: str) -> NotFound:
    return NotFound(f"No voice profile {profile_id!r}.", code="VOICE_PROFILE_NOT_FOUND",
                    message_ja=f"ボイスプロファイル {profile_id!r} はありません。",
                    details={"profile_id": profile_id})


def validate_name(name: str | None) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned or len(cleaned) > NAME_MAX:
        raise InvalidInput(f"A profile name needs 1-{NAME_MAX} characters.",
                           code="VOICE_PROFILE_NAME_INVALID",
                           message_ja=f"プロファイル名は 1〜{NAME_MAX} 文字にしてください。",
                           details={"max_chars": NAME_MAX})
    return cleaned


OwnerCheck = Callable[[str | None], bool]
"""Whether the caller may see a record with this ``owner`` (None: made with auth off)."""


class ProfileStore:
    """Voice profiles in storage; ``profile.json`` is the commit marker.

    ``profile.json`` carries the ``owner`` (a user id) when the profile was made by a signed-in
    user. A store made by :meth:`scoped` shows only what its ``can_see`` allows: someone
    else's profile reads as ``VOICE_PROFILE_NOT_FOUND`` for every operation."""

    def __init__(self, storage: ProfileStorage, can_see: OwnerCheck | None = None) -> None:
        self.storage = storage
        self.can_see = can_see

    def scoped(self, can_see: OwnerCheck | None) -> ProfileStore:
        """The same profiles, seen by one caller (``None``: everything, e.g. an admin)."""
        return ProfileStore(self.storage, can_see)

    @staticmethod
    def key(profile_id: str, name: str) -> str:
        return f"{PROFILE_ROOT}/{profile_id}/{name}"

    def _check_id(self, profile_id: str) -> str:
        if not PROFILE_ID.match(profile_id or ""):
            raise _not_found(profile_id)
        return profile_id

    def new_id(self) -> str:
        while True:
            candidate = new_profile_id(secrets.token_hex(4))
            if not self.storage.exists(self.key(candidate, "profile.json")):
                return candidate

    def save(self, profile: Profile, reference: Audio, embedding: np.ndarray) -> Profile:
        pid = self._check_id(profile.id)
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(embedding, np.float32))
        self.storage.put(self.key(pid, "reference.wav"), encode_wav(reference))
        self.storage.put(self.key(pid, "embedding.npy"), buffer.getvalue())
        self._write(profile)  # last: only now does the profile exist
        return profile

    def _write(self, profile: Profile) -> None:
        self.storage.put(self.key(profile.id, "profile.json"),
                         json.dumps(profile.as_dict(), ensure_ascii=False, indent=2).encode())

    def get(self, profile_id: str) -> Profile:
        pid = self._check_id(profile_id)
        try:
            data = json.loads(self.storage.get(self.key(pid, "profile.json")))
        except NotFound:
            raise _not_found(profile_id) from None
        except ValueError:
            raise _not_found(profile_id) from None
        if not isinstance(data, dict) or (
                self.can_see is not None and not self.can_see(data.get("owner"))):
            raise _not_found(profile_id)
        return Profile.from_dict(dict(data, id=pid))

    def list(self) -> list[Profile]:
        if not isinstance(self.storage, ListingStorage):
            raise TypeError("this storage cannot list its keys, so it cannot list profiles")
        profiles = []
        for item in self.storage.list(PROFILE_ROOT + "/"):
            parts = item.key.split("/")
            if len(parts) != 4 or parts[3] != "profile.json" or not PROFILE_ID.match(parts[2]):
                continue
            try:
                profile = self.get(parts[2])
            except NotFound:
                continue  # deleted between listing and reading
            if not self.storage.exists(self.key(parts[2], "embedding.npy")):
                continue
            profiles.append(profile)
        return sorted(profiles, key=lambda p: p.created_at, reverse=True)

    def reference(self, profile_id: str) -> Audio:
        if self.can_see is not None:
            self.get(profile_id)
        data = self.storage.get(self.key(self._check_id(profile_id), "reference.wav"))
        return decode_audio(data, area="VOICE_PROFILE")

    def embedding(self, profile_id: str) -> np.ndarray:
        if self.can_see is not None:
            self.get(profile_id)
        data = self.storage.get(self.key(self._check_id(profile_id), "embedding.npy"))
        vector: np.ndarray = np.load(io.BytesIO(data)).astype(np.float32)
        return vector

    def rename(self, profile_id: str, name: str) -> Profile:
        profile = self.get(profile_id)
        profile.name = validate_name(name)
        profile.updated_at = now()
        self._write(profile)
        return profile

    def set_evolution(self, profile_id: str, evolution: dict[str, Any] | None,
                      voice_source: str | None = None) -> Profile:
        """Record a style search's outcome (and, when it decided, which voice serves)."""
        profile = self.get(profile_id)
        profile.evolution = evolution
        if voice_source is not None:
            profile.voice_source = voice_source
        profile.updated_at = now()
        self._write(profile)
        return profile

    def delete(self, profile_id: str) -> None:
        pid = self._check_id(profile_id)
        if not self.storage.exists(self.key(pid, "profile.json")):
            raise _not_found(profile_id)
        if self.can_see is not None:
            self.get(pid)  # someone else's profile: not found
        self.storage.delete(self.key(pid, "profile.json"))  # first: it vanishes from lists
        for name in ("embedding.npy", "reference.wav", *EVOLVED_FILES):
            self.storage.delete(self.key(pid, name))

    def discard(self, profile_id: str) -> None:
        """Remove whatever a failed or cancelled creation of ``profile_id`` wrote."""
        pid = self._check_id(profile_id)
        for name in ("profile.json", "embedding.npy", "reference.wav", *EVOLVED_FILES):
            self.storage.delete(self.key(pid, name))


def public_profile(profile: Profile) -> dict[str, Any]:
    """The profile as the API shows it (``id`` and ``profile_id`` both: clients use either)."""
    return dict(profile.as_dict(), profile_id=profile.id)
