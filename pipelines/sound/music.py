"""Mixing a voice over background music, and encoding the mix.

- :func:`mix` lays the voice over the music: lead-in and tail, the music looped with a
  crossfade to any length, fades, ducking under speech (attack/release on the voice's
  envelope, with look-ahead so the dip is in place when a phrase starts), then the whole mix
  normalised to -16 LUFS integrated with true peaks under -1 dBTP (:mod:`pipelines.sound.loudness`).
- :func:`render` encodes (mp3 192 kbps by default, wav, m4a) and re-measures the decoded file,
  because lossy encoding can raise true peaks: if it did, the level is trimmed and it encodes
  again.

The tracks themselves (built-in and uploaded) are :mod:`pipelines.sound.tracks`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.base import Audio, ProgressFn, no_progress
from pipelines.media import decode_audio, encode_audio, resample
from pipelines.options import Number, parse, ranges
from pipelines.sound.loudness import (
    db_to_gain,
    gain_to_db,
    integrated_loudness,
    limit,
    normalize,
    true_peak_db,
)
from pipelines.sound.tracks import MIX_RATE, OwnerCheck, Track, TrackStore, load_track

LOSSY_MARGIN_DB = 0.5  # aim this far under the ceiling before an mp3/m4a encode


# ------------------------------------------------------------------------------- options

OutputFormat = Literal["mp3", "wav", "m4a"]
Bitrate = Literal["96k", "128k", "160k", "192k", "256k", "320k"]
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
BITRATES: tuple[str, ...] = get_args(Bitrate)


class MixOptions(BaseModel):
    """How to mix; form fields and JSON strings are parsed by :meth:`from_mapping`."""

    model_config = ConfigDict(frozen=True)

    # music amplitude relative to the voice's loudness (1 = as loud)
    bgm_volume: Number = Field(default=0.3, ge=0.0, le=1.0)
    # the same in dB; wins over bgm_volume when given
    bgm_volume_db: Number | None = Field(default=None, ge=-60.0, le=0.0)
    fade_in: Number = Field(default=2.0, ge=0.0, le=10.0)
    fade_out: Number = Field(default=3.0, ge=0.0, le=10.0)
    lead_in: Number = Field(default=1.0, ge=0.0, le=5.0)  # music before the voice
    tail: Number = Field(default=2.0, ge=0.0, le=5.0)  # music after the voice
    ducking: bool = True
    duck_db: Number = Field(default=10.0, ge=0.0, le=30.0)  # the dip under speech
    attack_ms: Number = Field(default=80.0, ge=5.0, le=1000.0)
    release_ms: Number = Field(default=400.0, ge=20.0, le=3000.0)
    loop_crossfade: Number = Field(default=1.5, ge=0.1, le=5.0)
    target_lufs: Number = Field(default=-16.0, ge=-30.0, le=-10.0)
    true_peak_db: float = -1.0
    output_format: OutputFormat = "mp3"
    bitrate: Bitrate = "192k"

    @property
    def music_db(self) -> float:
        """Music level relative to the voice's loudness, in dB (-inf = no music)."""
        if self.bgm_volume_db is not None:
            return self.bgm_volume_db
        return gain_to_db(self.bgm_volume)

    @field_validator("ducking", mode="before")
    @classmethod
    def _flag(cls, value: object) -> object:
        text = str(value).strip().lower()
        if isinstance(value, bool) or text not in FLAGS:
            return value  # a bool, or left for pydantic to refuse
        return FLAGS[text]

    @field_validator("output_format", mode="before")
    @classmethod
    def _format_name(cls, value: object) -> object:
        return str(value).lower().lstrip(".")

    @field_validator("bitrate", mode="before")
    @classmethod
    def _kbps(cls, value: object) -> object:
        rate = str(value).lower()
        return rate if rate.endswith("k") else f"{rate}k"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> MixOptions:
        """Validated options from form fields or JSON (strings are parsed); ``None`` and ""
        keep the default; ``format`` is ``output_format``. Errors name the field and its
        allowed range."""
        values: dict[str, Any] = {}
        for key, value in (raw or {}).items():
            name = "output_format" if key == "format" else key
            if value is None or value == "" or name not in FORM_FIELDS:
                continue
            values[name] = value
        return parse(cls, values, code="BGM_INVALID_PARAMS")


FLAGS = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}
RANGES: dict[str, tuple[float, float]] = ranges(MixOptions, list(MixOptions.model_fields))
# what a caller may set (the true-peak ceiling is the studio's, not a knob)
FORM_FIELDS = (*RANGES, "ducking", "output_format", "bitrate")


# ----------------------------------------------------------------------------------- mix


@dataclass
class MixReport:
    details: dict[str, Any]
    frame_times: np.ndarray = field(repr=False)  # seconds, one per 10 ms frame of the mix
    music_gain_db: np.ndarray = field(repr=False)  # ducking gain (0 = no dip) per frame
    voice_level_db: np.ndarray = field(repr=False)  # the voice's short-term level per frame
    speech: np.ndarray = field(repr=False)  # bool per frame


def _trim_quiet_ends(samples: np.ndarray, rate: int, below_db: float = 25.0) -> np.ndarray:
    """Drop a track's near-silent start and end (its fade-in or decay) so loops join on
    music, not on a gap."""
    frame = max(1, rate // 50)
    count = samples.size // frame
    if count < 10:
        return samples
    rms = np.sqrt(np.mean(samples[: count * frame].reshape(count, frame) ** 2, axis=1))
    level = 20 * np.log10(rms + 1e-10)
    loud = np.nonzero(level > np.median(level) - below_db)[0]
    if loud.size == 0:
        return samples
    return samples[loud[0] * frame: (loud[-1] + 1) * frame]


def loop_to_length(music: Audio, length: int, crossfade: float) -> tuple[np.ndarray, int]:
    """The music repeated to ``length`` samples, each seam an equal-power crossfade.
    Returns (samples, how many times the track plays)."""
    body = _trim_quiet_ends(music.samples, music.sample_rate)
    if body.size >= length:
        return body[:length].copy(), 1
    fade = int(min(crossfade * music.sample_rate, body.size // 3))
    theta = np.linspace(0.0, np.pi / 2, max(fade, 1), dtype=np.float32)
    fade_out_curve, fade_in_curve = np.cos(theta), np.sin(theta)
    pieces = [body[: body.size - fade]]
    plays, produced = 1, body.size - fade
    while produced < length:
        seam = body[body.size - fade:] * fade_out_curve + body[:fade] * fade_in_curve
        pieces.append(seam)
        pieces.append(body[fade: body.size - fade])
        produced += body.size - fade
        plays += 1
    pieces.append(body[body.size - fade:])  # the last play ends whole
    return np.concatenate(pieces)[:length].astype(np.float32), plays


def _frame_levels(samples: np.ndarray, frame: int) -> np.ndarray:
    count = int(math.ceil(samples.size / frame))
    padded = np.pad(samples, (0, count * frame - samples.size))
    rms = np.sqrt(np.mean(padded.reshape(count, frame).astype(np.float64) ** 2, axis=1))
    levels: np.ndarray = 20 * np.log10(rms + 1e-10)
    return levels


def ducking_gain(voice_track: np.ndarray, rate: int, options: MixOptions,
                 hop: float = 0.01) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame music gain in dB from the voice envelope: ``-duck_db`` while someone speaks,
    0 between phrases; attack/release are one-pole time constants, and the target is read
    ``attack`` ahead so the music is already down when a phrase begins. Gaps shorter than
    250 ms (between words) are held, so the music does not pump.
    Returns (gain_db, voice_level_db, speech) per frame."""
    frame = max(1, int(rate * hop))
    level = _frame_levels(voice_track, frame)
    if not np.any(level > -100):
        zeros = np.zeros_like(level)
        return zeros, level, zeros.astype(bool)
    active = level[level > -100]
    threshold = max(float(np.percentile(active, 95)) - 30.0, -55.0)
    speech = level > threshold
    hold = int(0.25 / hop)
    if hold > 0 and speech.any():
        # close short gaps: a frame counts as speech if speech lies within `hold` on both sides
        idx = np.arange(speech.size)
        speech_idx = np.nonzero(speech)[0]
        nxt = np.searchsorted(speech_idx, idx)
        prev_ok = nxt > 0
        after = np.where(nxt < speech_idx.size, speech_idx[np.minimum(nxt, speech_idx.size - 1)]
                         - idx, hold + 1)
        before = np.where(prev_ok, idx - speech_idx[np.maximum(nxt - 1, 0)], hold + 1)
        speech = speech | ((after <= hold) & (before <= hold))
    if not options.ducking or options.duck_db <= 0:
        return np.zeros(level.size), level, speech
    target = np.where(speech, -options.duck_db, 0.0)
    ahead = int(round(options.attack_ms / 1000.0 / hop))
    if ahead > 0:  # look ahead: the dip starts `attack` before the phrase
        shifted = np.concatenate([target[ahead:], np.zeros(ahead)])
        target = np.minimum(target, shifted)
    a_att = math.exp(-hop / max(options.attack_ms / 1000.0 / 3.0, 1e-4))
    a_rel = math.exp(-hop / max(options.release_ms / 1000.0 / 3.0, 1e-4))
    gain = np.empty_like(target)
    current = 0.0
    for i, goal in enumerate(target):  # ~100 iterations per second of audio: cheap
        coef = a_att if goal < current else a_rel
        current = goal + (current - goal) * coef
        gain[i] = current
    return gain, level, speech


def _fades(length: int, rate: int, fade_in: float, fade_out: float) -> np.ndarray:
    env = np.ones(length, dtype=np.float32)
    n_in = min(int(fade_in * rate), length // 2)
    n_out = min(int(fade_out * rate), length // 2)
    if n_in > 0:
        env[:n_in] = np.sin(np.linspace(0, np.pi / 2, n_in, dtype=np.float32)) ** 2
    if n_out > 0:
        env[length - n_out:] = np.cos(np.linspace(0, np.pi / 2, n_out, dtype=np.float32)) ** 2
    return env


def mix(voice: Audio, music: Audio | None, options: MixOptions | None = None,
        progress: ProgressFn = no_progress) -> tuple[Audio, MixReport]:
    """Voice over looped, faded, ducked music, normalised to ``target_lufs`` / ``true_peak_db``.

    ``music`` None (or a volume of 0) gives the voice alone with lead-in/tail silence, still
    normalised. The mix runs at 48 kHz."""
    options = options or MixOptions()
    rate = MIX_RATE
    v = resample(voice, rate).samples
    lead, tail = int(options.lead_in * rate), int(options.tail * rate)
    total = lead + v.size + tail
    voice_track = np.zeros(total, dtype=np.float32)
    voice_track[lead: lead + v.size] = v
    progress(0.1, "loop")
    voice_lufs = integrated_loudness(Audio(v, rate))
    music_db = options.music_db
    with_music = music is not None and math.isfinite(music_db)
    plays = 0
    music_gain_db = -math.inf
    bed = np.zeros(total, dtype=np.float32)
    if with_music:
        assert music is not None
        looped, plays = loop_to_length(resample(music, rate), total, options.loop_crossfade)
        music_lufs = integrated_loudness(Audio(looped, rate))
        reference = voice_lufs if math.isfinite(voice_lufs) else options.target_lufs
        if math.isfinite(music_lufs):
            music_gain_db = reference + music_db - music_lufs
            bed = looped * np.float32(db_to_gain(music_gain_db))
            bed *= _fades(total, rate, options.fade_in, options.fade_out)
    progress(0.4, "ducking")
    hop = 0.01
    duck_db, voice_level, speech = ducking_gain(voice_track, rate, options, hop)
    frame = int(rate * hop)
    frame_times = np.arange(duck_db.size) * hop
    sample_gain = np.interp(np.arange(total) / rate, frame_times + hop / 2,
                            10 ** (duck_db / 20.0)).astype(np.float32)
    bed = bed * sample_gain
    progress(0.6, "loudness")
    lossy = options.output_format in ("mp3", "m4a")
    ceiling = options.true_peak_db - (LOSSY_MARGIN_DB if lossy else 0.2)
    mixed, loudness = normalize(Audio(voice_track + bed, rate), options.target_lufs, ceiling)
    # how far the voice sits above the music while someone speaks (same gain applied to both)
    speech_samples = np.repeat(speech, frame)[:total]
    if speech_samples.size < total:
        speech_samples = np.pad(speech_samples, (0, total - speech_samples.size))
    voice_energy = float(np.sum(voice_track[speech_samples] ** 2))
    music_energy = float(np.sum(bed[speech_samples] ** 2))
    if music_energy > 0 and voice_energy > 0:
        voice_to_music: float | None = round(10 * math.log10(voice_energy / music_energy), 1)
    else:
        voice_to_music = None
    progress(1.0, "mixed")
    details = {
        "sample_rate": rate,
        "duration": round(total / rate, 3),
        "voice_duration": round(v.size / rate, 3),
        "voice_offset": round(lead / rate, 3),
        "bgm_volume": options.bgm_volume,
        "bgm_volume_db": None if not math.isfinite(music_db) else round(music_db, 1),
        "music_gain_db": None if not math.isfinite(music_gain_db) else round(music_gain_db, 1),
        "fade_in": options.fade_in, "fade_out": options.fade_out,
        "lead_in": options.lead_in, "tail": options.tail,
        "loop": {"plays": plays, "crossfade": options.loop_crossfade},
        "ducking": {"enabled": options.ducking and options.duck_db > 0,
                    "depth_db": options.duck_db, "attack_ms": options.attack_ms,
                    "release_ms": options.release_ms,
                    "speech_fraction": round(float(speech.mean()), 3) if speech.size else 0.0},
        "voice_to_music_db": voice_to_music,
        "loudness": {"target_lufs": options.target_lufs, "ceiling_dbtp": options.true_peak_db,
                     "voice_lufs": None if not math.isfinite(voice_lufs) else round(voice_lufs, 2),
                     **{k: (None if not math.isfinite(v_) else v_)
                        for k, v_ in loudness.items()}},
    }
    return mixed, MixReport(details, frame_times, duck_db, voice_level, speech)


# -------------------------------------------------------------------------------- render


def render(audio: Audio, fmt: str = "mp3", bitrate: str = "192k", ceiling_db: float = -1.0,
           target_lufs: float | None = -16.0) -> tuple[bytes, dict[str, Any]]:
    """Encode, then decode the result and meter it as a listener's tool would.

    Lossy encoders move both numbers (LAME's low-pass took ~0.4 LU off our mixes; true peaks
    can rise): when the decoded file is off the target by more than 0.15 LU or over the
    ceiling, the level is corrected by the measured error and it encodes again (at most
    three times; the ceiling wins over the target). Returns the bytes and the measurements
    of the decoded file."""
    samples = audio.samples
    data = b""
    measured: dict[str, Any] = {}
    for attempt in range(3):
        data = encode_audio(Audio(samples, audio.sample_rate), fmt, bitrate)
        decoded = (Audio(samples, audio.sample_rate) if fmt == "wav"
                   else decode_audio(data, area="BGM", target_rate=None))
        peak = true_peak_db(decoded.samples)
        lufs = integrated_loudness(decoded)
        measured = {"true_peak_dbtp": round(peak, 2) if math.isfinite(peak) else None,
                    "lufs": round(lufs, 2) if math.isfinite(lufs) else None,
                    "encodes": attempt + 1}
        off = (target_lufs - lufs) if target_lufs is not None and math.isfinite(lufs) else 0.0
        if peak <= ceiling_db and abs(off) <= 0.15:
            break
        step = off if peak + off <= ceiling_db else min(off, ceiling_db - peak - 0.05)
        internal = true_peak_db(samples) + (ceiling_db - peak)  # the codec's peak overshoot
        samples = (samples * np.float32(db_to_gain(step))).astype(np.float32)
        samples, _ = limit(samples, audio.sample_rate, min(internal, ceiling_db) - 0.05)
    return data, measured


def mix_to_file(voice: Audio, track_id_or_mood: str | None, options: MixOptions,
                store: TrackStore | None = None, progress: ProgressFn = no_progress,
                music: Audio | None = None,
                visible: OwnerCheck | None = None) -> tuple[bytes, MixReport, Track | None]:
    """The one call the message pipeline uses: find the track, mix, encode."""
    track = None
    if music is None and track_id_or_mood and track_id_or_mood.lower() != "none":
        track, music = load_track(track_id_or_mood, store, visible=visible)
    mixed, report = mix(voice, music, options, progress)
    data, measured = render(mixed, options.output_format, options.bitrate,
                            options.true_peak_db, options.target_lufs)
    report.details["output"] = {"format": options.output_format,
                                "bitrate": options.bitrate if options.output_format != "wav"
                                else None, **measured}
    report.details["track"] = track.public() if track else None
    return data, report, track


def options_dict(options: MixOptions) -> dict[str, Any]:
    return options.model_dump()
