"""Signal work shared by the speech engines and voice matching: trim, join, pitch, volume.

Pitch and intonation use Praat's PSOLA (overlap-add) resynthesis through parselmouth: it
keeps the voice's timbre better than a phase vocoder, runs ~40 ms per 4 s, and lets the
contour be scaled around its mean in the log domain (``intonation``).
"""

from __future__ import annotations

import numpy as np

FADE_S = 0.008
SILENCE_DB = -40.0
PEAK_LIMIT = 0.97


def _frame_db(samples: np.ndarray, rate: int, frame_s: float = 0.01) -> np.ndarray:
    hop = max(1, int(rate * frame_s))
    n = len(samples) // hop
    if n == 0:
        return np.full(1, -120.0)
    frames = samples[: n * hop].reshape(n, hop).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    db: np.ndarray = 20 * np.log10(rms)
    return db


def voiced_bounds(samples: np.ndarray, rate: int, threshold_db: float | None = None,
                  frame_s: float = 0.01) -> tuple[int, int]:
    """First and last sample of sound louder than ``threshold_db`` below the loudest frame
    (absolute floor -55 dBFS); ``(0, 0)`` for silence."""
    db = _frame_db(samples, rate, frame_s)
    peak = float(db.max())
    limit = max(peak + (threshold_db if threshold_db is not None else SILENCE_DB), -55.0)
    loud = np.nonzero(db > limit)[0]
    if len(loud) == 0:
        return 0, 0
    hop = max(1, int(rate * frame_s))
    return int(loud[0] * hop), int(min(len(samples), (loud[-1] + 1) * hop))


def trim_bounds(samples: np.ndarray, rate: int, pad_s: float = 0.02) -> tuple[int, int]:
    """The sample range :func:`trim` keeps (``(0, 0)`` for silence); engines that know
    their phoneme timing use its start to move the timing along with the cut."""
    start, end = voiced_bounds(samples, rate)
    if end <= start:
        return 0, 0
    pad = int(pad_s * rate)
    return max(0, start - pad), min(len(samples), end + pad)


def trim(samples: np.ndarray, rate: int, pad_s: float = 0.02) -> np.ndarray:
    """Cut leading and trailing silence, keeping ``pad_s`` of it either side."""
    start, end = trim_bounds(samples, rate, pad_s)
    return samples[start:end]


def fade(samples: np.ndarray, rate: int, seconds: float = FADE_S) -> np.ndarray:
    """Raised-cosine fade in and out, so a piece starts and ends at zero (no click)."""
    out = samples.astype(np.float32, copy=True)
    n = min(int(seconds * rate), len(out) // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))).astype(np.float32)
        out[:n] *= ramp
        out[-n:] *= ramp[::-1]
    return out


def join(pieces: list[tuple[np.ndarray, float]], rate: int,
         lead_s: float = 0.05, tail_s: float = 0.05) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Concatenate ``(samples, silence_after)`` pieces, each trimmed and faded, with exact
    silences between them. Returns the audio and each piece's (start, end) in seconds."""
    out: list[np.ndarray] = [np.zeros(int(lead_s * rate), np.float32)]
    spans: list[tuple[float, float]] = []
    cursor = len(out[0])
    for k, (samples, gap) in enumerate(pieces):
        piece = fade(trim(samples, rate), rate)
        out.append(piece)
        spans.append((cursor / rate, (cursor + len(piece)) / rate))
        cursor += len(piece)
        silence = int((gap if k < len(pieces) - 1 else tail_s) * rate)
        out.append(np.zeros(silence, np.float32))
        cursor += silence
    return np.concatenate(out).astype(np.float32), spans


def change_pitch(samples: np.ndarray, rate: int, semitones: float = 0.0,
                 intonation: float = 1.0, floor: float = 60.0, ceiling: float = 600.0) -> np.ndarray:
    """Shift pitch by ``semitones`` and scale its contour around the mean by ``intonation``
    (0 = monotone, 1 = unchanged, 2 = twice the excursions), length unchanged."""
    if abs(semitones) < 1e-3 and abs(intonation - 1.0) < 1e-3:
        return samples
    if len(samples) < rate // 10:
        return samples
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(samples.astype(np.float64), sampling_frequency=rate)
    manipulation = call(sound, "To Manipulation", 0.01, floor, ceiling)
    tier = call(manipulation, "Extract pitch tier")
    if call(tier, "Get number of points") == 0:
        return samples  # nothing voiced
    mean = call(tier, "Get mean (curve)", 0, 0)
    if not np.isfinite(mean) or mean <= 0:
        return samples
    factor = 2.0 ** (semitones / 12.0)
    call(tier, "Formula",
         f"exp(ln({mean}) + {intonation} * (ln(self) - ln({mean}))) * {factor}")
    call([tier, manipulation], "Replace pitch tier")
    result = call(manipulation, "Get resynthesis (overlap-add)")
    out = np.asarray(result.values[0], dtype=np.float32)
    if len(out) < len(samples):
        out = np.pad(out, (0, len(samples) - len(out)))
    return out[: len(samples)]


def apply_volume(samples: np.ndarray, volume: float) -> np.ndarray:
    """Scale by ``volume`` (0-2); if that would clip, scale back to a -0.3 dBFS peak."""
    out = samples.astype(np.float32) * float(volume)
    peak = float(np.max(np.abs(out))) if len(out) else 0.0
    if peak > PEAK_LIMIT:
        out *= PEAK_LIMIT / peak
    return out


def normalize_peak(samples: np.ndarray, target: float = 0.89) -> np.ndarray:
    """Bring the loudest sample to ``target`` (-1 dBFS), so every engine sounds equally loud."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak < 1e-6:
        return samples.astype(np.float32)
    return (samples * (target / peak)).astype(np.float32)


def click_score(samples: np.ndarray, rate: int, at: float, window_s: float = 0.004) -> float:
    """How much a join at ``at`` seconds jumps: the largest sample-to-sample step there over
    the typical step of the whole signal (a click scores >> 10; smooth audio ~1-5)."""
    i = int(at * rate)
    w = int(window_s * rate)
    seg = samples[max(0, i - w): i + w]
    if len(seg) < 2:
        return 0.0
    typical = float(np.percentile(np.abs(np.diff(samples)), 99)) + 1e-6
    return float(np.max(np.abs(np.diff(seg))) / typical)


def resample_array(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return samples.astype(np.float32)
    import soxr

    out: np.ndarray = soxr.resample(samples.astype(np.float32), rate, target)
    return out.astype(np.float32)
