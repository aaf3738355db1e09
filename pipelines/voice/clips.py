"""One recording for a voice profile: decode, measure, denoise, trim and judge it.

Each clip gets a :class:`ClipReport` (what a person sees: durations, loudness, noise, a
verdict); a bad clip is rejected with its ``VOICE_SAMPLE_*`` code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from models.base import Audio, Denoiser
from models.errors import InvalidInput
from models.speech.dsp import trim, voiced_bounds
from pipelines.media import decode_audio

CLIP_MIN_S = 3.0
CLIP_MAX_S = 30.0
MIN_SPEECH_S = 1.5


@dataclass
class ClipReport:
    """What a person sees for each uploaded clip: measurements and a verdict."""

    index: int
    filename: str
    duration: float = 0.0
    speech_seconds: float = 0.0
    peak: float = 0.0
    clipped_fraction: float = 0.0
    snr_db: float = 0.0
    snr_after_db: float | None = None
    verdict: str = "ok"  # ok | warning | rejected
    code: str | None = None
    message: str = ""
    message_ja: str = ""
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _snr_db(samples: np.ndarray, rate: int) -> float:
    """Speech-to-noise estimate: loud frames (95th percentile) over quiet ones (10th)."""
    hop = int(0.02 * rate)
    n = len(samples) // hop
    if n < 10:
        return 0.0
    rms = np.sqrt(np.mean(samples[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(rms + 1e-9)
    return float(np.percentile(db, 95) - np.percentile(db, 10))


def _clipped_fraction(samples: np.ndarray) -> float:
    """Share of samples sitting at full scale in runs of 3 or more (a clipped waveform)."""
    hot = np.abs(samples) >= 0.985
    if not hot.any():
        return 0.0
    runs = hot[:-2] & hot[1:-1] & hot[2:]
    return float(runs.sum()) / len(samples)


class ClipRejected(Exception):
    """A clip failed a check; :func:`rejected` writes it into the clip's report."""

    def __init__(self, code: str, message: str, message_ja: str) -> None:
        super().__init__(message)
        self.code, self.message, self.message_ja = code, message, message_ja


def _measure(audio: Audio, report: ClipReport) -> None:
    samples, rate = audio.samples, audio.sample_rate
    report.duration = audio.duration
    report.peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    report.clipped_fraction = _clipped_fraction(samples)
    report.snr_db = _snr_db(samples, rate)
    start, end = voiced_bounds(samples, rate, threshold_db=-35.0)
    report.speech_seconds = (end - start) / rate
    name = report.filename
    if report.duration < CLIP_MIN_S:
        raise ClipRejected("VOICE_SAMPLE_TOO_SHORT",
                      f"{name}: {report.duration:.1f} s is too short; record {CLIP_MIN_S:.0f}-"
                      f"{CLIP_MAX_S:.0f} s of speech.",
                      f"{name}: {report.duration:.1f} 秒は短すぎます（{CLIP_MIN_S:.0f}〜"
                      f"{CLIP_MAX_S:.0f} 秒で録音してください）。")
    if report.duration > CLIP_MAX_S:
        raise ClipRejected("VOICE_SAMPLE_TOO_LONG",
                      f"{name}: {report.duration:.1f} s is too long; the limit is "
                      f"{CLIP_MAX_S:.0f} s per clip.",
                      f"{name}: {report.duration:.1f} 秒は長すぎます（1 クリップ "
                      f"{CLIP_MAX_S:.0f} 秒まで）。")
    if report.peak < 0.005 or report.speech_seconds < 0.1:
        raise ClipRejected("VOICE_SAMPLE_SILENT", f"{name}: the clip is silent.",
                      f"{name}: 音声が無音です。")
    if report.clipped_fraction > 0.002:
        raise ClipRejected("VOICE_SAMPLE_CLIPPED",
                      f"{name}: {report.clipped_fraction:.1%} of the clip is clipped (too "
                      "loud); record again a little further from the microphone.",
                      f"{name}: 音が割れています（{report.clipped_fraction:.1%}）。"
                      "マイクから少し離れて録音し直してください。")
    if report.clipped_fraction > 0:
        report.warnings.append("a few clipped samples")



def decode_clip(data: bytes, report: ClipReport) -> Audio:
    """Decode (mono, 24 kHz) and measure; raises ``ClipRejected`` / ``InvalidInput``."""
    audio = decode_audio(data, area="VOICE_SAMPLE", filename=report.filename)
    _measure(audio, report)
    return audio




def denoise_clip(audio: Audio, report: ClipReport, denoiser: Denoiser | None) -> Audio:
    if denoiser is None:
        return audio
    return denoised_clip(denoiser.denoise(audio), report)


def denoised_clip(audio: Audio, report: ClipReport) -> Audio:
    """A clip as the denoiser gave it back, its noise measured again for its report."""
    report.snr_after_db = _snr_db(audio.samples, audio.sample_rate)
    return audio


def finish_clip(audio: Audio, report: ClipReport) -> Audio:
    """Trim and judge the (denoised) clip; raises ``ClipRejected``."""
    cleaned = trim(audio.samples, audio.sample_rate, pad_s=0.1)
    start, end = voiced_bounds(cleaned, audio.sample_rate, threshold_db=-35.0)
    report.speech_seconds = (end - start) / audio.sample_rate
    best_snr = max(report.snr_db, report.snr_after_db or 0.0)
    if best_snr < 12.0:
        raise ClipRejected("VOICE_SAMPLE_TOO_NOISY",
                      f"{report.filename}: too noisy (speech only {best_snr:.0f} dB above "
                      "the noise even after denoising); record somewhere quieter.",
                      f"{report.filename}: 雑音が多すぎます（ノイズ除去後も {best_snr:.0f} dB）。"
                      "静かな場所で録音してください。")
    if report.speech_seconds < MIN_SPEECH_S:
        raise ClipRejected("VOICE_SAMPLE_TOO_SHORT",
                      f"{report.filename}: only {report.speech_seconds:.1f} s of speech; "
                      f"speak for at least {CLIP_MIN_S:.0f} s.",
                      f"{report.filename}: 話している部分が {report.speech_seconds:.1f} 秒しか"
                      f"ありません（{CLIP_MIN_S:.0f} 秒以上話してください）。")
    if report.snr_db < 20.0:
        report.warnings.append("background noise (denoised)")
    if report.warnings:
        report.verdict = "warning"
    return Audio(cleaned, audio.sample_rate)


def rejected(report: ClipReport, exc: Exception) -> None:
    if isinstance(exc, ClipRejected):
        report.verdict, report.code = "rejected", exc.code
        report.message, report.message_ja = exc.message, exc.message_ja
    elif isinstance(exc, InvalidInput):
        report.verdict, report.code = "rejected", exc.code
        report.message, report.message_ja = exc.message, exc.message_ja or exc.message
    else:
        raise exc


def check_clip(data: bytes, filename: str, index: int = 0,
               denoiser: Denoiser | None = None) -> tuple[Audio | None, ClipReport]:
    """Decode, measure, denoise and trim one clip. Never raises for a bad clip: the report
    says ``rejected`` with its ``VOICE_SAMPLE_*`` code (the UI shows each clip's verdict)."""
    report = ClipReport(index=index, filename=filename or f"clip {index + 1}")
    try:
        audio = decode_clip(data, report)
        return finish_clip(denoise_clip(audio, report, denoiser), report), report
    except (ClipRejected, InvalidInput) as exc:
        rejected(report, exc)
    return None, report


