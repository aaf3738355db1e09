"""Prosody: reshape a voice recording's pitch, pace, energy, intonation and pauses.

The one entry point is :func:`adjust` (``Audio`` + :class:`ProsodyParams` -> ``Audio`` +
:class:`ProsodyReport`). Libraries, and why:

- pitch and tempo: Rubber Band through ``pedalboard.time_stretch`` with
  ``preserve_formants=True`` — a shifted voice keeps its vowel colour (no chipmunk), and it
  keeps speaker identity far better than librosa's phase vocoder (bench/prosody.py measures it);
- intonation: Praat's PSOLA manipulation through ``praat-parselmouth`` — the pitch tier is
  scaled in semitones around the speaker's median, then resynthesised by overlap-add, which
  leaves formants and timing as they were;
- pauses: silences between phrases (found from the short-term level) are lengthened or
  shortened by looping or cutting their quiet middle with short crossfades;
- energy: plain gain followed by the true-peak limiter of :mod:`pipelines.sound.loudness`, so a
  boost can never clip.

Emotion presets are the one table :data:`EMOTION_PRESETS` (the README and the UI show it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.base import Audio, ProgressFn, no_progress
from models.errors import InvalidInput
from pipelines.options import Number, parse, ranges
from pipelines.sound.loudness import db_to_gain, gain_to_db, limit, true_peak_db

PEAK_CEILING_DB = -1.0  # energy boost never pushes true peaks above this

# --------------------------------------------------------------------------- parameters

NEUTRAL: dict[str, float] = {"pitch_shift": 0.0, "time_stretch": 1.0, "energy_boost": 1.0,
                             "intonation": 1.0, "pauses": 1.0}

# The one table of emotion presets (README "Prosody presets" shows the same numbers).
# happy and celebration follow the original app: happy = 1.1x speed, +2 semitones, +2 dB;
# celebration = pitch x1.15 (+2.42 semitones), tempo x1.10, energy x1.20.
EMOTION_PRESETS: dict[str, dict[str, float]] = {
    "neutral": {"pitch_shift": 0.0, "time_stretch": 1.00, "energy_boost": 1.00,
                "intonation": 1.0, "pauses": 1.0},
    "happy": {"pitch_shift": 2.0, "time_stretch": 1.10, "energy_boost": 1.26,
              "intonation": 1.2, "pauses": 0.9},
    "celebration": {"pitch_shift": 2.42, "time_stretch": 1.10, "energy_boost": 1.20,
                    "intonation": 1.4, "pauses": 0.9},
    "excited": {"pitch_shift": 3.0, "time_stretch": 1.15, "energy_boost": 1.30,
                "intonation": 1.5, "pauses": 0.7},
    "calm": {"pitch_shift": -1.0, "time_stretch": 0.92, "energy_boost": 0.90,
             "intonation": 0.8, "pauses": 1.2},
    "sad": {"pitch_shift": -2.0, "time_stretch": 0.85, "energy_boost": 0.80,
            "intonation": 0.6, "pauses": 1.4},
}
Emotion = Literal["neutral", "happy", "celebration", "excited", "calm", "sad", "auto"]
EMOTIONS: tuple[str, ...] = get_args(Emotion)  # the presets, then "auto"

# Words that pick a preset for ``emotion="auto"``; the first emotion with the most hits wins.
AUTO_KEYWORDS: dict[str, tuple[str, ...]] = {
    "celebration": ("birthday", "congratulation", "congrats", "anniversary", "wedding",
                    "graduation", "celebrat", "happy new year", "merry christmas", "cheers",
                    "誕生日", "たんじょうび", "おめでとう", "お祝い", "祝", "結婚", "卒業", "入学",
                    "合格", "記念日", "明けまして", "あけまして", "メリークリスマス", "乾杯"),
    "happy": ("thank", "thanks", "grateful", "glad", "happy", "love", "enjoy", "welcome",
              "ありがとう", "感謝", "嬉しい", "うれしい", "楽しい", "たのしい", "大好き", "よろしく"),
    "excited": ("wow", "amazing", "awesome", "incredible", "can't wait", "cannot wait",
                "let's go", "すごい", "すごーい", "最高", "やった", "わくわく", "ワクワク", "楽しみ"),
    "calm": ("relax", "rest", "take care", "good night", "goodnight", "peace", "slowly",
             "お疲れ", "おつかれ", "ゆっくり", "おやすみ", "お大事に", "のんびり", "穏やか"),
    "sad": ("sorry", "apolog", "condolence", "miss you", "passed away", "farewell", "goodbye",
            "sad", "ごめん", "すみません", "申し訳", "残念", "悲しい", "かなしい", "お悔やみ",
            "さようなら", "寂しい", "さみしい"),
}

ALIASES = {"pitch": "pitch_shift", "speed": "time_stretch", "tempo": "time_stretch",
           "energy": "energy_boost", "volume": "energy_boost", "intonation_scale": "intonation",
           "pause": "pauses", "pause_scale": "pauses", "preset": "emotion"}


def _invalid(field_name: str, message: str, message_ja: str, **details: Any) -> InvalidInput:
    return InvalidInput(message, code="PROSODY_INVALID_PARAMS", message_ja=message_ja,
                        details={"field": field_name, **details})


MESSAGES = {"emotion": ("Unknown emotion {value}; use one of {allowed}.",
                        "emotion {value} は使えません（{allowed}）。")}


class ProsodyParams(BaseModel):
    """What the caller asked for. ``None`` means "take it from the emotion preset"
    (or neutral when there is no preset); explicit values override the preset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pitch_shift: Number | None = Field(default=None, ge=-12.0, le=12.0)  # semitones
    # speed factor: 1.1 = 10% faster (shorter)
    time_stretch: Number | None = Field(default=None, ge=0.5, le=2.0)
    energy_boost: Number | None = Field(default=None, ge=0.5, le=2.0)  # 1.26 ~ +2 dB
    # pitch-contour scale around the median: 0 flat, 2 doubled
    intonation: Number | None = Field(default=None, ge=0.0, le=2.0)
    pauses: Number | None = Field(default=None, ge=0.0, le=2.0)  # pause scale
    emotion: Emotion | None = None
    text: str | None = None  # the message, for emotion="auto"
    ignored: tuple[str, ...] = ()

    @field_validator("emotion", mode="before")
    @classmethod
    def _emotion_name(cls, value: object) -> object:
        if value is None or value == "":
            return None
        return str(value).strip().lower()

    @model_validator(mode="after")
    def _auto_needs_text(self) -> ProsodyParams:
        if self.emotion == "auto" and not (self.text or "").strip():
            raise _invalid("text", "emotion 'auto' needs the message text in 'text'.",
                           "emotion が auto のときは text にメッセージ本文を指定してください。",
                           allowed=list(EMOTIONS))
        return self

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> ProsodyParams:
        """Validate a JSON-ish mapping: numbers in range, a known emotion; aliases such as
        ``speed`` or ``pitch`` are accepted, unknown keys are reported in ``ignored``."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise _invalid("params", "params must be a JSON object.",
                           "params は JSON オブジェクトで指定してください。")
        values: dict[str, Any] = {}
        ignored: list[str] = []
        for key, value in raw.items():
            name = ALIASES.get(str(key), str(key))
            if name == "text":
                values[name] = None if value is None else str(value)
            elif name in RANGES or name == "emotion":
                values[name] = value
            else:
                ignored.append(str(key))
        return parse(cls, {**values, "ignored": tuple(ignored)},
                     code="PROSODY_INVALID_PARAMS", messages=MESSAGES)

    def resolved(self) -> tuple[str, dict[str, float]]:
        """(emotion used, the five numbers to apply)."""
        emotion = (self.emotion or "neutral").lower()
        if emotion == "auto":
            emotion = auto_emotion(self.text or "")
        values = dict(EMOTION_PRESETS[emotion])
        for name in RANGES:
            explicit = getattr(self, name)
            if explicit is not None:
                values[name] = float(explicit)
        return emotion, values


def auto_emotion(text: str) -> str:
    """Pick a preset from the message text (Japanese and English keywords)."""
    lowered = text.lower()
    best, best_hits = "neutral", 0
    for emotion, words in AUTO_KEYWORDS.items():
        hits = sum(lowered.count(w) for w in words)
        if hits > best_hits:
            best, best_hits = emotion, hits
    if best == "neutral" and re.search(r"[!！]{2,}", text):
        best = "excited"
    return best


RANGES: dict[str, tuple[float, float]] = ranges(
    ProsodyParams, ("pitch_shift", "time_stretch", "energy_boost", "intonation", "pauses"))


# --------------------------------------------------------------------------- the report


TimeMap = tuple[tuple[float, float], ...]
"""Knots (input seconds, output seconds) of a piecewise-linear map of times through a change
of the audio's timing: a phoneme said at t is said at ``np.interp(t, *zip(*knots))`` after."""


@dataclass
class ProsodyReport:
    emotion: str
    applied: dict[str, float]
    changes: dict[str, str]  # human-readable, one entry per operation that changed anything
    original_duration: float
    duration: float
    pauses_found: int = 0
    limiter_db: float = 0.0
    notes: list[str] = field(default_factory=list)
    ignored: tuple[str, ...] = ()
    time_map: TimeMap = ()
    """Where each moment of the input is in the output (pauses and tempo): timings said
    over the input (phonemes for lip-sync) follow it. Not part of the API's record."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ignored"] = list(self.ignored)
        data.pop("time_map")
        return data


def describe(values: Mapping[str, float]) -> dict[str, str]:
    """The seed's human-readable change list (only what differs from neutral)."""
    out: dict[str, str] = {}
    pitch = values["pitch_shift"]
    if abs(pitch) > 1e-6:
        ratio = 2 ** (pitch / 12)
        out["pitch"] = (f"Pitch shifted by {pitch:+.2f} semitones (x{ratio:.2f}), "
                        "formants preserved")
    stretch = values["time_stretch"]
    if abs(stretch - 1) > 1e-6:
        pct = abs(stretch - 1) * 100
        out["speed"] = f"Speed x{stretch:.2f} ({pct:.0f}% {'faster' if stretch > 1 else 'slower'})"
    energy = values["energy_boost"]
    if abs(energy - 1) > 1e-6:
        out["energy"] = f"Volume {gain_to_db(energy):+.1f} dB (x{energy:.2f}), peak-safe"
    inton = values["intonation"]
    if abs(inton - 1) > 1e-6:
        verb = "flattened" if inton < 1 else "expanded"
        out["intonation"] = f"Intonation {verb} to {inton * 100:.0f}% of its range"
    pauses = values["pauses"]
    if abs(pauses - 1) > 1e-6:
        verb = "shortened" if pauses < 1 else "lengthened"
        out["pauses"] = f"Pauses between phrases {verb} to {pauses * 100:.0f}%"
    return out


# --------------------------------------------------------------------------- operations


def change_pitch_and_tempo(audio: Audio, semitones: float, speed: float) -> Audio:
    """Rubber Band (pedalboard): speed > 1 shortens; pitch moves with formants preserved."""
    if abs(semitones) < 1e-6 and abs(speed - 1) < 1e-6:
        return audio
    import pedalboard

    out = pedalboard.time_stretch(
        audio.samples.astype(np.float32)[None, :], float(audio.sample_rate),
        stretch_factor=float(speed), pitch_shift_in_semitones=float(semitones),
        high_quality=True, preserve_formants=True,
    )
    return Audio(np.ascontiguousarray(out[0], dtype=np.float32), audio.sample_rate)


def f0_track(audio: Audio, step: float = 0.01, floor: float = 60.0,
             ceiling: float = 700.0) -> tuple[np.ndarray, np.ndarray]:
    """(times, F0 Hz with 0 for unvoiced) by Praat's autocorrelation pitch tracker."""
    import parselmouth

    if audio.duration < 0.1:
        return np.zeros(0), np.zeros(0)
    sound = parselmouth.Sound(audio.samples.astype(np.float64), float(audio.sample_rate))
    pitch = sound.to_pitch(time_step=step, pitch_floor=floor, pitch_ceiling=ceiling)
    return np.asarray(pitch.xs()), np.asarray(pitch.selected_array["frequency"])


def scale_intonation(audio: Audio, factor: float) -> tuple[Audio, str | None]:
    """Scale the pitch contour around the speaker's median, in semitones (Praat PSOLA).

    Returns the audio and a note when nothing could be done (no voiced speech)."""
    if abs(factor - 1) < 1e-6:
        return audio, None
    import parselmouth
    from parselmouth.praat import call

    _, f0 = f0_track(audio)
    voiced = f0[f0 > 0]
    if voiced.size < 5:
        return audio, "intonation unchanged: no voiced speech found"
    centre = float(np.exp(np.median(np.log(voiced))))
    sound = parselmouth.Sound(audio.samples.astype(np.float64), float(audio.sample_rate))
    manipulation = call(sound, "To Manipulation", 0.01, 60.0, 700.0)
    tier = call(manipulation, "Extract pitch tier")
    # keep the result in a sane vocal range even for factor 2 on a lively speaker
    call(tier, "Formula...",
         f"min(1000, max(40, exp(ln({centre:.4f}) + (ln(self) - ln({centre:.4f})) * {factor:.4f})))")
    call([tier, manipulation], "Replace pitch tier")
    result = call(manipulation, "Get resynthesis (overlap-add)")
    samples = np.asarray(result.values[0], dtype=np.float32)
    n = audio.samples.size
    samples = samples[:n] if samples.size >= n else np.pad(samples, (0, n - samples.size))
    if not np.isfinite(samples).all():
        return audio, "intonation unchanged: resynthesis failed"
    return Audio(samples, audio.sample_rate), None


def find_pauses(audio: Audio, min_pause: float = 0.2, below_db: float = 35.0,
                hop: float = 0.01) -> list[tuple[int, int]]:
    """Sample spans of the quiet stretches *between* phrases (not the leading/trailing
    silence): frames more than ``below_db`` under the speech level for ``min_pause``+."""
    x = audio.samples
    frame = max(1, int(audio.sample_rate * hop))
    count = x.size // frame
    if count < 3:
        return []
    rms = np.sqrt(np.mean(x[: count * frame].reshape(count, frame).astype(np.float64) ** 2,
                          axis=1))
    level = 20 * np.log10(rms + 1e-10)
    speech_level = float(np.percentile(level, 95))
    quiet = level < max(speech_level - below_db, -70.0)
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for i, q in enumerate(np.append(quiet, False)):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if start > 0 and i < count and (i - start) * hop >= min_pause:
                spans.append((start * frame, i * frame))
            start = None
    return spans


def _crossfade_join(a: np.ndarray, b: np.ndarray, fade: int) -> np.ndarray:
    fade = min(fade, a.size, b.size)
    if fade <= 0:
        return np.concatenate([a, b])
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    middle = a[-fade:] * (1 - ramp) + b[:fade] * ramp
    return np.concatenate([a[:-fade], middle, b[fade:]])


def _resize_quiet(segment: np.ndarray, length: int, fade: int) -> np.ndarray:
    """A quiet segment made ``length`` long: cut its middle out, or loop it, with crossfades."""
    if length <= 0:
        return segment[:0]
    if length <= segment.size:
        if length <= 2 * fade:
            return segment[:length].copy()
        head = segment[: (length + fade + 1) // 2]
        tail = segment[segment.size - (length + fade - head.size):]
        return _crossfade_join(head, tail, fade)
    out = segment
    while out.size < length:
        out = _crossfade_join(out, segment, fade)
    return out[:length]


def scale_pauses(audio: Audio, factor: float, edge: float = 0.05,
                 fade: float = 0.01) -> tuple[Audio, int]:
    """Lengthen (factor > 1) or shorten the pauses between phrases; the ``edge`` seconds at
    either side of each pause (breath, decay) stay as they are. Returns (audio, pauses)."""
    out, count, _ = scale_pauses_mapped(audio, factor, edge, fade)
    return out, count


def scale_pauses_mapped(audio: Audio, factor: float, edge: float = 0.05,
                        fade: float = 0.01) -> tuple[Audio, int, TimeMap]:
    """:func:`scale_pauses`, plus where every moment of the input lands in the output (the
    speech between pauses moves by whole pause changes, not by a uniform scale)."""
    spans = find_pauses(audio)
    identity: TimeMap = ((0.0, 0.0), (audio.duration, audio.duration))
    if abs(factor - 1) < 1e-6 or not spans:
        return audio, len(spans), identity
    rate = audio.sample_rate
    keep, xfade = int(edge * rate), int(fade * rate)
    pieces: list[np.ndarray] = []
    cursor = 0
    written = 0  # samples out so far
    knots: list[tuple[float, float]] = [(0.0, 0.0)]
    x = audio.samples
    for start, end in spans:
        core_start, core_end = start + keep, end - keep
        if core_end - core_start <= 2 * xfade:
            continue
        pieces.append(x[cursor:core_start])
        written += core_start - cursor
        knots.append((core_start / rate, written / rate))
        core = x[core_start:core_end]
        pieces.append(_resize_quiet(core, int(round(core.size * factor)), xfade))
        written += pieces[-1].size
        knots.append((core_end / rate, written / rate))
        cursor = core_end
    pieces.append(x[cursor:])
    written += x.size - cursor
    knots.append((x.size / rate, written / rate))
    return Audio(np.concatenate(pieces).astype(np.float32), rate), len(spans), tuple(knots)


def apply_energy(audio: Audio, gain: float, ceiling_db: float = PEAK_CEILING_DB
                 ) -> tuple[Audio, float]:
    """Gain, then the true-peak limiter: louder, never over ``ceiling_db`` (-1 dBTP, or the
    input's own true peak when that was already hotter, so untouched audio stays as it was)."""
    if abs(gain - 1) < 1e-6 and true_peak_db(audio.samples) <= ceiling_db:
        return audio, 0.0
    boosted = (audio.samples * np.float32(gain)).astype(np.float32)
    limited, reduction = limit(boosted, audio.sample_rate, ceiling_db)
    return Audio(limited, audio.sample_rate), reduction


# --------------------------------------------------------------------------- the pipeline


def adjust(audio: Audio, params: ProsodyParams | Mapping[str, Any] | None = None,
           progress: ProgressFn = no_progress) -> tuple[Audio, ProsodyReport]:
    """Apply intonation, pauses, pitch + tempo, then energy; return the audio and a report.

    Order matters: intonation is tracked on the untouched voice (most reliable F0), pauses
    are found before tempo changes, and the limiter runs last so nothing after it can clip.
    """
    if not isinstance(params, ProsodyParams):
        params = ProsodyParams.from_mapping(params)
    emotion, values = params.resolved()
    notes: list[str] = []
    original = audio.duration
    # peak-safe: never above -1 dBTP, nor above a hotter input's own peak (capped at 0 dBTP)
    ceiling = max(PEAK_CEILING_DB, min(true_peak_db(audio.samples), 0.0))
    progress(0.05, "intonation")
    audio, note = scale_intonation(audio, values["intonation"])
    if note:
        notes.append(note)
    progress(0.35, "pauses")
    audio, pauses_found, knots = scale_pauses_mapped(audio, values["pauses"])
    if abs(values["pauses"] - 1) > 1e-6 and pauses_found == 0:
        notes.append("pauses unchanged: no pause between phrases found")
    progress(0.5, "pitch_tempo")
    paused = audio.duration
    audio = change_pitch_and_tempo(audio, values["pitch_shift"], values["time_stretch"])
    tempo = audio.duration / paused if paused else 1.0  # the stretch as it came out
    progress(0.9, "energy")
    audio, reduction = apply_energy(audio, values["energy_boost"], ceiling)
    progress(1.0, "done")
    changes = describe(values)
    if reduction > 0.05:
        changes["limiter"] = (f"Peaks limited by up to {reduction:.1f} dB to stay under "
                              f"{ceiling:.1f} dBTP")
    report = ProsodyReport(
        emotion=emotion, applied={k: round(v, 4) for k, v in values.items()}, changes=changes,
        original_duration=round(original, 3), duration=round(audio.duration, 3),
        pauses_found=pauses_found, limiter_db=round(reduction, 2), notes=notes,
        ignored=params.ignored,
        time_map=tuple((round(a, 4), round(b * tempo, 4)) for a, b in knots))
    return audio, report


def presets_table() -> list[dict[str, Any]]:
    """The preset table as rows (for the README, the UI and ``GET`` endpoints)."""
    return [{"emotion": name, **vals,
             "energy_db": round(gain_to_db(vals["energy_boost"]), 1)}
            for name, vals in EMOTION_PRESETS.items()]


def param_fields() -> list[str]:
    return [name for name in ProsodyParams.model_fields if name != "ignored"]


__all__ = ["EMOTION_PRESETS", "RANGES", "ProsodyParams", "ProsodyReport", "adjust",
           "auto_emotion", "change_pitch_and_tempo", "db_to_gain", "describe", "f0_track",
           "find_pauses", "presets_table", "scale_intonation", "scale_pauses",
           "scale_pauses_mapped"]
