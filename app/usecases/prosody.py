"""Reshaping a recording's pitch, pace, energy, intonation and pauses, for ``/api/prosody/*``
and the Prosody tab: one way to check the settings, adjust, encode and store the result."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.storage import Storage, new_key
from models.base import Audio
from models.errors import InvalidInput
from pipelines.media import decode_audio, encode_audio
from pipelines.sound import prosody
from pipelines.sound.loudness import gain_to_db

OUTPUT_FORMATS = ("wav", "mp3", "m4a")
EMOTIONS: tuple[str, ...] = tuple(prosody.EMOTIONS)
PRESETS: tuple[str, ...] = tuple(prosody.EMOTION_PRESETS)
"""The moods with a preset (``EMOTIONS`` less ``auto``, which picks one from the text)."""
METHODS = {"pitch_tempo": "Rubber Band (pedalboard), formants preserved",
           "intonation": "Praat PSOLA (parselmouth)",
           "pauses": "silence detection + crossfaded loop/cut",
           "energy": "gain + true-peak limiter (-1 dBTP)"}
SLIDERS = ("pitch_shift", "time_stretch", "energy_boost", "intonation", "pauses")
"""The settings a person moves by hand (the tab's sliders, in this order)."""


def presets() -> dict[str, Any]:
    """The emotion presets, the parameter ranges and the emotions (``GET .../presets``)."""
    return {"presets": prosody.presets_table(),
            "ranges": {k: {"min": lo, "max": hi} for k, (lo, hi) in prosody.RANGES.items()},
            "emotions": list(prosody.EMOTIONS)}


def preset_values(emotion: str, text: str = "") -> list[float]:
    """The sliders' values for ``emotion`` (``auto``: the mood the text reads as)."""
    name = prosody.auto_emotion(text or "") if emotion == "auto" else emotion
    return [prosody.EMOTION_PRESETS[name][s] for s in SLIDERS]


def settings(raw: dict[str, Any], fmt: str = "wav") -> tuple[prosody.ProsodyParams, str]:
    """The settings and output format, checked before any audio is decoded."""
    params = prosody.ProsodyParams.from_mapping(raw)
    fmt = fmt.lower()
    if fmt not in OUTPUT_FORMATS:
        raise InvalidInput(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}.",
                           code="PROSODY_INVALID_PARAMS",
                           message_ja=f"output_format は {', '.join(OUTPUT_FORMATS)} のいずれかです。",
                           details={"field": "output_format", "allowed": list(OUTPUT_FORMATS)})
    return params, fmt


@dataclass(frozen=True)
class Adjusted:
    """The recording before and after, where the result is stored, and what changed."""

    before: Audio
    after: Audio
    key: str
    fmt: str
    report: prosody.ProsodyReport
    processing_time: float


def adjust_recording(storage: Storage, data: bytes, filename: str | None,
                     params: prosody.ProsodyParams, fmt: str = "wav") -> Adjusted:
    started = time.perf_counter()
    audio = decode_audio(data, area="PROSODY", filename=filename)
    result, report = prosody.adjust(audio, params)
    key = storage.put(new_key("prosody", fmt), encode_audio(result, fmt))
    return Adjusted(audio, result, key, fmt, report,
                    round(time.perf_counter() - started, 3))


def answer(storage: Storage, done: Adjusted) -> dict[str, Any]:
    """REST's answer for an adjustment."""
    report = done.report
    return {
        "output_url": storage.url(done.key),
        "output_key": done.key,
        "format": done.fmt,
        "duration": report.duration,
        "original_duration": report.original_duration,
        "emotion": report.emotion,
        "changes_applied": report.changes,
        "parameters": report.applied,
        "notes": report.notes,
        "ignored_params": list(report.ignored),
        "method": METHODS,
        "processing_time": done.processing_time,
    }


Track = tuple[np.ndarray, np.ndarray]


def pitch_tracks(done: Adjusted) -> tuple[Track, Track]:
    """The pitch contour before and after (for the tab's plot)."""
    return prosody.f0_track(done.before), prosody.f0_track(done.after)


def gain_db(gain: float) -> float:
    return float(gain_to_db(gain))
