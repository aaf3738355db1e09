"""Are the words still there? A check on speaker-normalised features that works for any
language (no Japanese recogniser ships in any package here) and that can fail.

Features: 13 MFCCs without c0 (level), 25 ms windows every 10 ms at 16 kHz, each coefficient
standardised over the utterance's loud frames (cepstral mean and variance normalisation
takes most of the speaker and the channel out, leaving what is said). Two speeches of the
same words follow the same path through that space; speech played backwards, garbled frames
or other words do not.

:func:`kept_words` compares a conversion, which keeps its source's timing (every converter
here does), frame by frame with the source: the mean cosine of the frames (-1..1), at the
best of a few vocal-tract scalings of the source (:data:`WARPS`), because moving every formant
by one factor (Praat matching) changes the voice, not the words. Across two *different*
voices with their own timing (DTW on the same features) the score did not separate the same
text from reversed speech or another text when the voices differed in sex (0.19 against
0.21-0.25, measured), so the check is always made against the same voice. :data:`KEPT` is the
threshold between what keeps the words (timbre filtering 0.99, Praat matching 0.89-0.96;
Whisper hears their words) and what does not (frame matching 0.63-0.65, Whisper missing 39 %
from outside; speech played backwards or silence 0.0-0.04), measured on English and Japanese.
"""

from __future__ import annotations

import functools

import numpy as np

from models.base import Audio
from models.speech.dsp import resample_array

RATE = 16000
HOP = 160
N_FFT = 512
N_MELS = 40
N_MFCC = 14
WARPS = (0.84, 0.88, 0.92, 0.96, 1.0, 1.04, 1.09, 1.14, 1.19)
"""Vocal-tract scalings tried: a converter that moves every formant by one factor (Praat's
"Change gender", a longer or shorter tract) keeps the words, and must not read as garbling."""
LOUD_DB = 35.0
"""Frames within this many dB of the utterance's loudest count as speech."""
KEPT = 0.8
SAME = 0.75
"""For :func:`same_words` (one voice, two paths): the same text scored 0.92-0.96, another
text 0.42-0.48, the text played backwards 0.39-0.43 (OpenJTalk and Kokoro, measured)."""


def _spectrogram(audio: Audio) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude spectrogram (bins, frames) at :data:`RATE` and each frame's level in dB."""
    import librosa

    samples = resample_array(np.asarray(audio.samples, np.float32), audio.sample_rate, RATE)
    if len(samples) < 8 * HOP:
        return np.zeros((N_FFT // 2 + 1, 0)), np.zeros(0)
    magnitude = np.abs(librosa.stft(samples, n_fft=N_FFT, win_length=400, hop_length=HOP))
    rms = librosa.feature.rms(y=samples, frame_length=N_FFT, hop_length=HOP)[0]
    n = min(magnitude.shape[1], len(rms))
    return magnitude[:, :n], 20.0 * np.log10(rms[:n] + 1e-9)


def features(audio: Audio, warp: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(frames, 13) standardised MFCCs and the mask of loud frames; ``warp`` scales the
    frequency axis first (a longer or shorter vocal tract: formants move by that factor)."""
    return _features(*_spectrogram(audio), warp)


@functools.cache
def _mel_bank() -> np.ndarray:
    import librosa

    bank: np.ndarray = librosa.filters.mel(sr=RATE, n_fft=N_FFT, n_mels=N_MELS)
    bank.setflags(write=False)
    return bank


def _features(magnitude: np.ndarray, level: np.ndarray, warp: float
              ) -> tuple[np.ndarray, np.ndarray]:
    from scipy.fft import dct

    if magnitude.shape[1] == 0:
        return np.zeros((0, N_MFCC - 1)), np.zeros(0, bool)
    if warp != 1.0:  # the formant at f moves to warp * f
        bins = np.arange(magnitude.shape[0], dtype=np.float64)
        source = np.clip(bins / warp, 0, magnitude.shape[0] - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, magnitude.shape[0] - 1)
        frac = (source - low)[:, None]
        magnitude = magnitude[low] * (1 - frac) + magnitude[high] * frac
    mel = _mel_bank() @ (magnitude ** 2)
    mfcc = dct(np.log(mel + 1e-10), axis=0, norm="ortho")[1:N_MFCC].T
    loud = level > level.max() - LOUD_DB
    if loud.sum() < 2:
        return mfcc * 0.0, loud
    mean = mfcc[loud].mean(axis=0)
    std = mfcc[loud].std(axis=0) + 1e-6
    return (mfcc - mean) / std, loud


def _rows(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9))


def _frame_agreement(a: np.ndarray, b: np.ndarray, loud: np.ndarray) -> float:
    n = min(len(a), len(b))
    if n == 0 or not loud[:n].any():
        return 0.0
    cos = (_rows(a[:n]) * _rows(b[:n])).sum(axis=1)
    return float(cos[loud[:n]].mean())


class SourceWords:
    """A source's features at every vocal-tract scaling of :data:`WARPS`, made once for the
    several conversions tried on it (a profile's serving measure tries up to five on each
    source: the source's nine scalings were most of the check's cost)."""

    def __init__(self, source: Audio) -> None:
        magnitude, level = _spectrogram(source)
        self.warped = [_features(magnitude, level, warp) for warp in WARPS]

    def kept(self, converted: Audio) -> float:
        """:func:`kept_words` of ``converted`` against this source."""
        a, _ = features(converted)
        best = -1.0
        for b, loud in self.warped:
            best = max(best, _frame_agreement(a, b, loud))
        return best


def kept_words(converted: Audio, source: Audio) -> float:
    """Mean cosine of ``converted``'s frames with ``source``'s at the same instants, over the
    source's speech frames, at the vocal-tract scaling (:data:`WARPS`) that fits best: 1 for
    the same speech, near 0 for unrelated sounds, below 0 for speech played backwards."""
    return SourceWords(source).kept(converted)


def same_words(a: Audio, b: Audio) -> float:
    """Mean cosine of frames matched by dynamic time warping, for one voice saying a text
    by two paths with their own timing (pauses, trimming): high for the same words, low for
    the words played backwards or another text. Across two voices it does not separate them
    (see above): use it only for the same voice."""
    import librosa

    fa, la = features(a)
    fb, lb = features(b)
    fa, fb = fa[la], fb[lb]
    if len(fa) < 5 or len(fb) < 5 or max(len(fa), len(fb)) > 3 * min(len(fa), len(fb)):
        return 0.0
    similarity = _rows(fa) @ _rows(fb).T
    _, path = librosa.sequence.dtw(C=1.0 - similarity)
    return float(similarity[path[:, 0], path[:, 1]].mean())
