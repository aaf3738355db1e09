"""Loudness and peaks: EBU R128 / ITU-R BS.1770 integrated loudness (pyloudnorm), true peak
from a 4x-oversampled signal, and a look-ahead limiter that keeps true peaks under a ceiling.

Prosody (peak-safe energy) and BGM (mix normalised to -16 LUFS, -1 dBTP) both use these, so
"peak-safe" means the same thing everywhere.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import firwin

from models.base import Audio

OVERSAMPLE = 4  # BS.1770-4 annex 2: 4x for 48 kHz material
MIN_LOUDNESS_SECONDS = 0.4  # one BS.1770 gating block


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def gain_to_db(gain: float) -> float:
    return float(20.0 * math.log10(gain)) if gain > 0 else -math.inf


@lru_cache(maxsize=1)
def _interpolation_phases() -> tuple[np.ndarray, ...]:
    """A 48-tap 4x interpolation low-pass (12 taps per phase, as BS.1770-4 annex 2 uses),
    split into its four polyphase branches."""
    taps = firwin(48, 1.0 / OVERSAMPLE, window=("kaiser", 6.0)) * OVERSAMPLE
    return tuple(taps[p::OVERSAMPLE].astype(np.float32) for p in range(OVERSAMPLE))


def _oversampled_abs(samples: np.ndarray) -> np.ndarray:
    """|x| of the 4x-oversampled signal, folded to one maximum per input sample.

    Each polyphase branch is a 12-tap convolution at the input rate (float32), which is ~20x
    faster than resampling the whole signal and taking the peak of that."""
    if samples.size == 0:
        return np.zeros(0, dtype=np.float32)
    x = samples.astype(np.float32, copy=False)
    delay = 6  # the filter's group delay (23.5 upsampled samples) in input samples
    peak = np.abs(x).copy()
    for branch in _interpolation_phases():
        y = np.convolve(x, branch)[delay: delay + x.size]
        np.maximum(peak, np.abs(y), out=peak)
    return peak


def true_peak_db(samples: np.ndarray) -> float:
    """True peak in dBTP (dB relative to full scale, measured on the 4x-oversampled signal)."""
    if samples.size == 0:
        return -math.inf
    return gain_to_db(float(_oversampled_abs(samples).max()))


def sample_peak_db(samples: np.ndarray) -> float:
    return gain_to_db(float(np.abs(samples).max())) if samples.size else -math.inf


def integrated_loudness(audio: Audio) -> float:
    """Integrated loudness in LUFS (gated, BS.1770-4); -inf for silence.

    Clips shorter than one 400 ms gating block are measured zero-padded, so a very short
    message still gets a number instead of an exception.
    """
    import pyloudnorm

    samples = audio.samples.astype(np.float64)
    need = int(math.ceil(MIN_LOUDNESS_SECONDS * audio.sample_rate)) + 1
    if samples.size < need:
        samples = np.pad(samples, (0, need - samples.size))
    if not np.any(samples):
        return -math.inf
    meter = pyloudnorm.Meter(audio.sample_rate)
    value = float(meter.integrated_loudness(samples))
    return value if math.isfinite(value) else -math.inf


def limit(samples: np.ndarray, rate: int, ceiling_db: float = -1.0,
          lookahead_ms: float = 5.0, release_ms: float = 60.0) -> tuple[np.ndarray, float]:
    """Look-ahead peak limiter on true (oversampled) peaks.

    The gain needed at each sample is min(1, ceiling / true peak); a forward minimum over the
    look-ahead plus a hold (``release_ms``), then a moving average over the look-ahead,
    gives a smooth gain curve that is never above the needed gain anywhere (each averaged
    value is a minimum over a window containing the sample). Returns the limited samples and
    the largest gain reduction in dB (0 when nothing was touched).
    """
    if samples.size == 0:
        return samples, 0.0
    ceiling = db_to_gain(ceiling_db)
    peaks = _oversampled_abs(samples)
    if peaks.max() <= ceiling:
        return samples, 0.0
    needed = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    look = max(1, int(rate * lookahead_ms / 1000.0))
    hold = max(0, int(rate * release_ms / 1000.0))
    width = look + hold
    # window [n - hold, n + look - 1]: minimum_filter1d centres its window; shift it.
    origin = hold - width // 2
    held = minimum_filter1d(needed, size=width, origin=origin, mode="nearest")
    # moving average over [n - look + 1, n]: each term is a min over a window containing n.
    smooth = uniform_filter1d(held, size=look, origin=(look - 1) // 2, mode="nearest")
    smooth = np.minimum(smooth, needed)  # numerical safety at the edges
    out = (samples * smooth).astype(np.float32)
    residual = _oversampled_abs(out).max()
    if residual > ceiling:  # interpolation between gain steps can overshoot a hair
        out *= np.float32(ceiling / residual)
    return out, -gain_to_db(float(smooth.min()))


def normalize(audio: Audio, target_lufs: float = -16.0, ceiling_dbtp: float = -1.0,
              iterations: int = 8, tolerance_lu: float = 0.05) -> tuple[Audio, dict[str, float]]:
    """Gain to ``target_lufs`` integrated, limited so true peaks stay under ``ceiling_dbtp``.

    Limiting takes loudness back, and a peaky voice can lose most of each added dB to the
    limiter, so the gain is solved by a secant search: each round applies the whole gain to
    the original and limits once (limiting never compounds), and the next gain follows the
    measured loudness-per-dB slope. Silence is returned untouched.
    """
    samples = audio.samples.astype(np.float32)
    before = integrated_loudness(audio)
    if not math.isfinite(before):
        return audio, {"input_lufs": before, "output_lufs": before, "gain_db": 0.0,
                       "limiter_db": 0.0, "true_peak_dbtp": true_peak_db(samples)}
    gain = target_lufs - before
    previous: tuple[float, float] | None = None
    out, reduction, current = samples, 0.0, before
    for _ in range(iterations):
        out, reduction = limit((samples * db_to_gain(gain)).astype(np.float32),
                               audio.sample_rate, ceiling_dbtp)
        current = integrated_loudness(Audio(out, audio.sample_rate))
        error = target_lufs - current
        if abs(error) <= tolerance_lu:
            break
        slope = 1.0
        if previous is not None and abs(gain - previous[0]) > 1e-6:
            slope = (current - previous[1]) / (gain - previous[0])
        previous = (gain, current)
        gain = min(gain + error / float(np.clip(slope, 0.1, 1.0)), 60.0)
    result = Audio(out, audio.sample_rate)
    return result, {"input_lufs": round(before, 2), "output_lufs": round(current, 2),
                    "gain_db": round(gain, 2), "limiter_db": round(reduction, 2),
                    "true_peak_dbtp": round(true_peak_db(out), 2)}
