"""Where a voice's formants lie against another's, and moving them there as a filter.

A vocal tract's length scales every formant by about the same factor, and the average
timbre (:class:`~models.voice.timbre_filter.Timbre`) cannot carry that move: averaged over
all vowels the formant peaks blur into a slope, so a gain that matches the average leaves
each vowel's formants where the source voice had them. Here each 5 ms frame's spectral
envelope (WORLD's CheapTrick, coded as mel-cepstra: smooth, no harmonics) is stretched along
the frequency axis by a factor ``scale`` (below 1: formants lower, a longer tract), and the
ratio of the stretched envelope to the frame's own is applied as a gain to the speech's
short-time spectrum. The harmonics, pitch, phase and noise stay the speech's own: no vocoder
rebuilds it, which is what cost frame matching its naturalness and words.

The person's scale against a source voice is the one whose stretched average envelope comes
nearest the person's (:func:`formant_scale`): 0.91-0.98 for the four LibriSpeech speakers
``bench/voice_rest.py`` profiles, against the Kokoro voices that serve them. Measured there
from outside (the d-vector judge the studio never uses; last stop's run -> this one):

* woman 1998: her average-timbre filter had sounded unnatural at every strength, and she was
  served as the nearest voice stood (nearness 0.31 English, 0.23 Japanese). With formants
  moved, the filter with her scale (0.93) at 1.3 serves both: 0.50 and 0.54, DistillMOS
  4.20 -> 3.97 and 3.91 -> 3.79. In a run before fewer strengths were judged, a 9 % warp
  alone (:mod:`models.voice.formant_warp`) served her English: 0.54 at DistillMOS 4.22;
* man 3005: the filter with his scale (0.91), 0.62 -> 0.66 in English and 0.56 -> 0.63 in
  Japanese, DistillMOS 4.09 -> 4.35 and 4.08 -> 4.41;
* the other two: within -0.03..+0.06; the profile's serving measure
  (:mod:`pipelines.voice.serving`) decides per person and language what serves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from models.base import Audio, module_available
from models.speech.dsp import resample_array

ANALYSIS_RATE = 16000
FRAME_MS = 5.0
CODED_DIMS = 40
LIFTER = 20
"""Cepstral values compared when a scale is fitted: the envelope's broad shape. The timbre
filter's gains keep as many (:func:`models.voice.timbre_filter.cepstral_gain`): more detail
brought the speech no nearer (the bench's served voices, seven speaker-languages, outside
judge / DistillMOS: 20 values 0.616 / 3.96, 28 values 0.600 / 3.89, 39 values 0.599 / 3.65)."""
LOUD_PERCENTILE = 30.0
SCALES = np.round(np.arange(0.85, 1.1501, 0.005), 3)
"""Formant scales a fit may choose: +-15 %, in steps of 0.5 %."""
CLAMP_DB = 12.0
"""The most a frame's gain may lift or cut one frequency."""
TOP_HZ = 7000.0
"""Above this (and a 1 kHz fade) the speech keeps its own spectrum."""


def missing() -> str | None:
    """Why these filters cannot run here (a module missing), or None."""
    for module in ("pyworld", "librosa"):
        ok, why = module_available(module)
        if not ok:
            return why
    return None


@dataclass(frozen=True)
class Analysis:
    """One speech's WORLD analysis at :data:`ANALYSIS_RATE`: coded envelope per frame."""

    f0: np.ndarray  # (frames,) Hz, 0 unvoiced
    coded: np.ndarray  # (frames, CODED_DIMS) mel-cepstra, c0 the level
    fft_size: int

    @cached_property
    def loud(self) -> np.ndarray:
        """The frames above the quietest :data:`LOUD_PERCENTILE` per cent."""
        level = self.coded[:, 0]
        keep: np.ndarray = level > np.percentile(level, LOUD_PERCENTILE)
        return keep

    @cached_property
    def log_envelopes(self) -> np.ndarray:
        """Every frame's log power envelope, decoded once for all the scales tried on it."""
        return decode_log(self.coded, self.fft_size)

    @cached_property
    def mean_log_envelope(self) -> np.ndarray:
        """The loud frames' mean log power envelope (bins up to ANALYSIS_RATE / 2)."""
        loud = self.coded[self.loud] if self.loud.any() else self.coded
        mean: np.ndarray = decode_log(loud.mean(axis=0, keepdims=True), self.fft_size)[0]
        return mean


_LAST: list[tuple[np.ndarray, Analysis]] = []
_LAST_LOCK = threading.Lock()
_KEPT = 4


def analyze(audio: Audio) -> Analysis:
    """WORLD's F0 and coded envelope of ``audio``, one row per :data:`FRAME_MS`. The last few
    are kept: a profile's serving measure converts one sentence with several converters and
    strengths, and each would analyse it again."""
    import pyworld

    with _LAST_LOCK:
        for samples, found in _LAST:
            if samples is audio.samples:  # the array is held, so no other can take its id
                return found
    x = resample_array(np.asarray(audio.samples, np.float32), audio.sample_rate,
                       ANALYSIS_RATE).astype(np.float64)
    f0, times = pyworld.dio(x, ANALYSIS_RATE, frame_period=FRAME_MS)
    f0 = pyworld.stonemask(x, f0, times, ANALYSIS_RATE)
    envelope = pyworld.cheaptrick(x, f0, times, ANALYSIS_RATE)
    coded = pyworld.code_spectral_envelope(envelope, ANALYSIS_RATE, CODED_DIMS)
    found = Analysis(f0, coded, (envelope.shape[1] - 1) * 2)
    with _LAST_LOCK:
        _LAST.insert(0, (audio.samples, found))
        del _LAST[_KEPT:]
    return found


def decode_log(coded: np.ndarray, fft_size: int) -> np.ndarray:
    """Mel-cepstra (rows) -> natural-log power envelopes (rows of fft_size / 2 + 1 bins)."""
    import pyworld

    envelope = pyworld.decode_spectral_envelope(np.ascontiguousarray(coded, np.float64),
                                                ANALYSIS_RATE, fft_size)
    logs: np.ndarray = np.log(np.maximum(envelope, 1e-30))
    return logs


def code_shape(log_envelope: np.ndarray) -> np.ndarray:
    """A log power envelope's mel-cepstral shape (c1.., no level), as a Timbre holds it."""
    import pyworld

    coded = pyworld.code_spectral_envelope(
        np.ascontiguousarray(np.exp(log_envelope)[None, :], np.float64), ANALYSIS_RATE,
        CODED_DIMS)
    shape: np.ndarray = coded[0, 1:]
    return shape


def stretch(log_envelopes: np.ndarray, scale: float) -> np.ndarray:
    """Envelopes (last axis: frequency bins) with every feature moved from f to f * scale."""
    n = log_envelopes.shape[-1]
    where = np.clip(np.arange(n) / scale, 0.0, n - 1.0)
    lo = np.floor(where).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    w = where - lo
    moved: np.ndarray = log_envelopes[..., lo] * (1.0 - w) + log_envelopes[..., hi] * w
    return moved


def formant_scale(source: Analysis, target_shape: np.ndarray) -> float:
    """The scale whose stretch of ``source``'s average envelope comes nearest
    ``target_shape`` (a :class:`~models.voice.timbre_filter.Timbre`'s mel-cepstral shape)
    over its first :data:`LIFTER` values. Stretching the average is stretching every frame
    and then averaging: both are linear in the log envelope.

    It finds the direction more surely than the distance: on OpenJTalk's voice with its
    formants moved by Praat it found 0.97 for 0.88 and 1.15 for 1.12. A fit on the
    envelopes' shape with their slope taken out tracked Praat's moves within 0.045 but
    pointed one real speaker the wrong way (up 3 %, where the outside judge heard her nearer
    6 % down) and ran to the grid's end (0.85) for two others."""
    mean = source.mean_log_envelope
    distances = [float(np.sum((code_shape(stretch(mean, float(s)))[:LIFTER]
                               - target_shape[:LIFTER]) ** 2)) for s in SCALES]
    return float(SCALES[int(np.argmin(distances))])


def warp_gain(source: Analysis, scale: float) -> np.ndarray:
    """Per frame, the log-amplitude gain (natural log; frames x bins at ANALYSIS_RATE) that
    moves the frame's formants by ``scale``, clamped to +-:data:`CLAMP_DB`."""
    logs = source.log_envelopes
    gain = 0.5 * (stretch(logs, scale) - logs)
    limit = CLAMP_DB / 20.0 * np.log(10.0)
    clipped: np.ndarray = np.clip(gain, -limit, limit)
    return clipped


def apply_gains(audio: Audio, static: np.ndarray | None = None,
                per_frame: np.ndarray | None = None) -> Audio:
    """``audio`` with log-amplitude gains on its short-time spectrum (phase untouched): a
    ``static`` curve and/or one curve per :data:`FRAME_MS` frame (both on bins up to
    ANALYSIS_RATE / 2; nothing above it), faded out above :data:`TOP_HZ`."""
    import librosa

    rate = audio.sample_rate
    hop = max(1, int(round(rate * FRAME_MS / 1000.0)))
    n_fft = 1024 if rate > ANALYSIS_RATE else 512
    spectrum = librosa.stft(audio.samples, n_fft=n_fft, hop_length=hop)
    freqs = np.linspace(0.0, rate / 2, spectrum.shape[0])
    fade = np.clip((TOP_HZ + 1000.0 - freqs) / 1000.0, 0.0, 1.0)
    total = np.zeros(spectrum.shape, np.float64)
    for gain in (static, per_frame):
        if gain is None:
            continue
        rows = np.atleast_2d(gain)
        where = np.clip(freqs / (ANALYSIS_RATE / 2) * (rows.shape[1] - 1), 0, rows.shape[1] - 1)
        lo = np.floor(where).astype(np.intp)
        hi = np.minimum(lo + 1, rows.shape[1] - 1)
        w = where - lo
        on_bins = (rows[:, lo] * (1.0 - w) + rows[:, hi] * w) * (freqs <= ANALYSIS_RATE / 2)
        frame = np.minimum(np.arange(spectrum.shape[1]), len(rows) - 1)
        total += (on_bins[frame] * fade).T
    out = librosa.istft(spectrum * np.exp(total), hop_length=hop, length=len(audio.samples))
    return Audio(np.asarray(out, np.float32), rate)
