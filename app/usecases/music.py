"""Background music: the catalogue (built-in and uploaded tracks) and laying music under a
voice, for ``/api/bgm/*`` and the BGM tab alike."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from app.storage import Storage, new_key
from models.base import Audio
from models.errors import StudioError
from pipelines.media import decode_audio
from pipelines.sound import music, tracks
from pipelines.sound.music import MixOptions, MixReport
from pipelines.sound.tracks import OwnerCheck, Track

MOODS: tuple[str, ...] = tuple(tracks.MOODS)
UPLOAD_MOODS: tuple[str, ...] = tuple(tracks.UPLOAD_MOODS)
UPLOAD_EXTENSIONS: tuple[str, ...] = tuple(tracks.UPLOAD_EXTENSIONS)
OUTPUT_FORMATS: tuple[str, ...] = tuple(music.OUTPUT_FORMATS)
MEDIA_TYPES = {"opus": "audio/ogg", "ogg": "audio/ogg", "mp3": "audio/mpeg", "wav": "audio/wav",
               "m4a": "audio/mp4", "flac": "audio/flac"}


def track_row(track: Track) -> dict[str, Any]:
    """A track as REST lists it (with its preview URL)."""
    return {**track.public(), "preview_url": f"/api/bgm/tracks/{track.id}/audio"}


def list_tracks(storage: Storage, visible: OwnerCheck | None) -> list[Track]:
    """Built-in tracks and the uploads ``visible`` lets this caller see."""
    return tracks.list_tracks(storage, visible)


def first_builtin() -> str:
    return tracks.builtin_tracks()[0].id


@dataclass(frozen=True)
class TrackAudio:
    data: bytes
    media_type: str
    builtin: bool


def track_audio(storage: Storage, track_id: str, visible: OwnerCheck | None) -> TrackAudio:
    """One track's file (``BGM_TRACK_NOT_FOUND`` for a missing or someone else's)."""
    track = next((t for t in tracks.list_tracks(storage, visible) if t.id == track_id), None)
    if track is None:
        raise tracks.not_found(track_id)
    ext = track.location.rsplit(".", 1)[-1].lower()
    return TrackAudio(tracks.track_bytes(track, storage),
                      MEDIA_TYPES.get(ext, "application/octet-stream"), track.builtin)


def track_file(storage: Storage, track_id: str, visible: OwnerCheck | None) -> str | None:
    """A local file of the track (the tab's preview player), None when there is none."""
    try:
        track = tracks.find_track(track_id, storage, visible)
    except StudioError:
        return None
    if track.builtin:
        return str(tracks.ASSETS_DIR / track.location)
    return str(storage.local_path(track.location))


def add_track(storage: Storage, data: bytes, filename: str | None, *, title: str | None,
              mood: str | None, owner: str | None) -> Track:
    """Check and keep an uploaded track (``BGM_AUDIO_*`` when it is not usable music)."""
    return tracks.save_upload(data, filename, storage, title=title, mood=mood, owner=owner)


def mix_options(raw: dict[str, Any]) -> MixOptions:
    return MixOptions.from_mapping(raw)


def decode_music(data: bytes, filename: str | None) -> Audio:
    """A one-off music upload, decoded at the mixing rate."""
    return decode_audio(data, area="BGM", filename=filename, target_rate=tracks.MIX_RATE)


def track_id(id_or_mood: str, storage: Storage) -> str | None:
    """The built-in or shared track a mood (or id) resolves to; None when there is none."""
    try:
        return tracks.find_track(id_or_mood, storage).id
    except StudioError:
        return None


def check_track(storage: Storage, bgm_type: str, visible: OwnerCheck | None) -> None:
    """``BGM_TRACK_NOT_FOUND`` (also for someone else's upload) before any audio work."""
    tracks.find_track(bgm_type, storage, visible)


@dataclass(frozen=True)
class Mixed:
    key: str
    options: MixOptions
    report: MixReport
    track: Track | None
    processing_time: float


def mix_voice(storage: Storage, voice: bytes, voice_name: str | None, track: str | None,
              options: MixOptions, *, music_audio: Audio | None = None,
              visible: OwnerCheck | None = None) -> Mixed:
    """Lay the track (an id or a mood; or ``music_audio``) under the voice and store the
    mix under ``bgm/mixes`` (aged out by retention)."""
    started = time.perf_counter()
    decoded = decode_audio(voice, area="BGM", filename=voice_name)
    encoded, report, used = music.mix_to_file(decoded, track, options, storage,
                                              music=music_audio, visible=visible)
    key = storage.put(new_key("bgm/mixes", options.output_format), encoded)
    return Mixed(key, options, report, used, round(time.perf_counter() - started, 3))


def mix_answer(storage: Storage, mixed: Mixed, *, uploaded_music: bool = False,
               music_name: str | None = None) -> dict[str, Any]:
    """REST's answer for a mix (``music_name``: a one-off upload's file name)."""
    report = mixed.report
    return {
        "output_url": storage.url(mixed.key),
        "output_key": mixed.key,
        "format": mixed.options.output_format,
        "bitrate": report.details["output"]["bitrate"],
        "duration": report.details["duration"],
        "track": track_row(mixed.track) if mixed.track else (
            {"id": "upload", "title": music_name} if uploaded_music else None),
        "mixing_details": report.details,
        "processing_time": mixed.processing_time,
    }

