"""The background-music catalogue: built-in tracks and the ones people upload.

- Built-in tracks live in ``assets/bgm/`` with ``manifest.json`` (title, mood, duration,
  licence, source, checksum); ``assets/bgm/make_catalogue.py`` rebuilds them from the MIT
  ``immich-memories-music`` package.
- Uploaded tracks are validated by :func:`pipelines.media.decode_audio` (10 MB limit) and kept in
  storage under ``bgm/tracks/{id}.{ext}`` with a ``{id}.json`` sidecar.

Mixing a voice over a track is :mod:`pipelines.sound.music`'s job.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.base import Audio
from models.errors import InvalidInput, NotFound, PayloadTooLarge
from pipelines.media import LIMITS, decode_audio

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets" / "bgm"
MOODS = ("calm", "happy", "celebration", "energetic", "tender")
UPLOAD_MOODS = (*MOODS, "custom")
UPLOAD_PREFIX = "bgm/tracks"
UPLOAD_EXTENSIONS = ("mp3", "wav", "ogg", "m4a", "flac")
MIX_RATE = 48000  # the rate tracks are decoded at for mixing
MIN_TRACK_SECONDS = 2.0


class TrackStore(Protocol):
    """The part of ``app.storage.Storage`` the catalogue uses."""

    def put(self, key: str, data: bytes) -> str: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> Iterator[Any]: ...


@dataclass(frozen=True)
class Track:
    id: str
    title: str
    mood: str
    duration: float
    licence: str
    source: str
    builtin: bool
    location: str  # a file name in assets/bgm/ (built-in) or a storage key (uploaded)
    owner: str | None = None  # the uploader's user id (auth on); None for built-ins

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "mood": self.mood,
                "duration": self.duration, "licence": self.licence, "source": self.source,
                "builtin": self.builtin}


def not_found(wanted: str) -> NotFound:
    return NotFound(f"No background track or mood {wanted!r}.", code="BGM_TRACK_NOT_FOUND",
                    message_ja=f"BGM トラックまたはムード {wanted!r} が見つかりません。",
                    details={"bgm_type": wanted, "moods": list(MOODS)})


@lru_cache(maxsize=1)
def builtin_tracks() -> tuple[Track, ...]:
    manifest = json.loads((ASSETS_DIR / "manifest.json").read_text(encoding="utf-8"))
    return tuple(Track(t["id"], t["title"], t["mood"], float(t["duration"]), t["licence"],
                       t["source"], True, t["file"]) for t in manifest["tracks"])


OwnerCheck = Callable[[str | None], bool]
"""Whether the caller may see an uploaded track with this owner (None: see everything)."""


def uploaded_tracks(store: TrackStore | None, visible: OwnerCheck | None = None) -> list[Track]:
    """Uploaded tracks; with ``visible``, only those the caller may see."""
    if store is None:
        return []
    tracks = []
    for item in store.list(UPLOAD_PREFIX + "/"):
        key = getattr(item, "key", str(item))
        if not key.endswith(".json"):
            continue
        try:
            meta = json.loads(store.get(key))
            tracks.append(Track(meta["id"], meta["title"], meta["mood"], float(meta["duration"]),
                                meta.get("licence", "uploaded by user"),
                                meta.get("source", "upload"), False, meta["key"],
                                meta.get("owner")))
        except (ValueError, KeyError, TypeError, NotFound):
            continue  # a half-written or foreign sidecar is not a track
        if visible is not None and not visible(tracks[-1].owner):
            tracks.pop()
    return sorted(tracks, key=lambda t: t.id)


def list_tracks(store: TrackStore | None = None,
                visible: OwnerCheck | None = None) -> list[Track]:
    """Built-in tracks first (manifest order), then the uploaded ones the caller may see."""
    return [*builtin_tracks(), *uploaded_tracks(store, visible)]


def find_track(id_or_mood: str, store: TrackStore | None = None,
               visible: OwnerCheck | None = None) -> Track:
    """A track by id, or the first built-in track of a mood; ``BGM_TRACK_NOT_FOUND`` else
    (also for someone else's upload when ``visible`` says so)."""
    wanted = (id_or_mood or "").strip()
    tracks = list_tracks(store, visible)
    for track in tracks:
        if track.id == wanted:
            return track
    for track in tracks:
        if track.mood == wanted.lower():
            return track
    raise not_found(wanted)


def track_bytes(track: Track, store: TrackStore | None = None) -> bytes:
    if track.builtin:
        return (ASSETS_DIR / track.location).read_bytes()
    if store is None:
        raise not_found(track.id)
    return store.get(track.location)


@lru_cache(maxsize=8)
def _decoded_builtin(track_id: str, rate: int) -> Audio:
    track = next(t for t in builtin_tracks() if t.id == track_id)
    return decode_audio(track_bytes(track), area="BGM", filename=track.location,
                        target_rate=rate)


def load_track(id_or_mood: str, store: TrackStore | None = None,
               rate: int = MIX_RATE, visible: OwnerCheck | None = None) -> tuple[Track, Audio]:
    """The track's metadata and its audio (mono, ``rate``); built-ins are cached decoded."""
    track = find_track(id_or_mood, store, visible)
    if track.builtin:
        return track, _decoded_builtin(track.id, rate)
    audio = decode_audio(track_bytes(track, store), area="BGM", filename=track.location,
                         target_rate=rate)
    return track, audio


def save_upload(data: bytes, filename: str | None, store: TrackStore, *,
                title: str | None = None, mood: str | None = None,
                owner: str | None = None) -> Track:
    """Validate an uploaded music file (mp3, wav, ogg, m4a, flac; at most 10 MB) and store it
    (with its uploader as ``owner`` when auth is on)."""
    name = filename or "upload"
    ext = Path(name).suffix.lower().lstrip(".")
    if ext not in UPLOAD_EXTENSIONS:
        raise InvalidInput(
            f"{name}: music uploads must be {', '.join(UPLOAD_EXTENSIONS)}.",
            code="BGM_AUDIO_INVALID", message_ja=f"{name}: 対応形式は {', '.join(UPLOAD_EXTENSIONS)} です。",
            details={"reason": "extension", "filename": name, "allowed": list(UPLOAD_EXTENSIONS)})
    if len(data) > LIMITS.bgm_max_bytes:
        raise PayloadTooLarge(
            f"{name}: the file is {len(data) / 1e6:.1f} MB; music uploads are limited to "
            f"{LIMITS.bgm_max_bytes / 1e6:.0f} MB.", code="BGM_AUDIO_TOO_LARGE",
            message_ja=f"{name}: ファイルが大きすぎます（上限 {LIMITS.bgm_max_bytes / 1e6:.0f} MB）。",
            details={"filename": name, "max_bytes": LIMITS.bgm_max_bytes})
    audio = decode_audio(data, area="BGM", filename=name,
                         limits=replace(LIMITS, audio_max_bytes=LIMITS.bgm_max_bytes))
    if audio.duration < MIN_TRACK_SECONDS:
        raise InvalidInput(
            f"{name}: the music is {audio.duration:.1f} s; it must be at least "
            f"{MIN_TRACK_SECONDS:.0f} s.", code="BGM_AUDIO_INVALID",
            message_ja=f"{name}: 音楽が短すぎます（{MIN_TRACK_SECONDS:.0f} 秒以上必要です）。",
            details={"reason": "too_short", "filename": name, "duration": audio.duration})
    if not np.any(np.abs(audio.samples) > 1e-4):
        raise InvalidInput(f"{name}: the music is silent.", code="BGM_AUDIO_INVALID",
                           message_ja=f"{name}: 音楽が無音です。",
                           details={"reason": "silent", "filename": name})
    chosen_mood = (mood or "custom").strip().lower()
    if chosen_mood not in UPLOAD_MOODS:
        raise InvalidInput(f"Unknown mood {mood!r}; use one of {', '.join(UPLOAD_MOODS)}.",
                           code="BGM_INVALID_PARAMS",
                           message_ja=f"ムード {mood!r} は使えません（{', '.join(UPLOAD_MOODS)}）。",
                           details={"field": "mood", "allowed": list(UPLOAD_MOODS)})
    clean_title = re.sub(r"[\x00-\x1f\x7f]", "", (title or Path(name).stem)).strip()[:100]
    track_id = f"user-{uuid.uuid4().hex[:12]}"
    key = f"{UPLOAD_PREFIX}/{track_id}.{ext}"
    store.put(key, data)
    track = Track(track_id, clean_title or track_id, chosen_mood, round(audio.duration, 2),
                  "uploaded by user", f"upload: {name}", False, key, owner)
    meta = {**track.public(), "key": key, "owner": owner}
    store.put(f"{UPLOAD_PREFIX}/{track_id}.json", json.dumps(meta, ensure_ascii=False).encode())
    return track
