"""Acoustic features of a voice, a second signal next to the speaker embedding: pitch
(median and spread of log F0, from Praat) and the spectral envelope (mean and spread of
13 MFCCs). Similarity is a bounded per-feature closeness, so a voice must come near on
every feature, not only on the embedding's view of it.
"""

from __future__ import annotations

import numpy as np

from models.base import Audio
from models.speech.dsp import resample_array

FEATURE_RATE = 16000
N_MFCC = 13
# Typical spread of each feature between different speakers: log F0 median and its std (in
# semitones), then MFCC means and stds. A difference of one scale counts as "far".
_SCALES = np.array([2.5, 1.0] + [8.0] + [4.0] * (N_MFCC - 1) + [3.0] * N_MFCC, np.float32)


def pitch_semitones(audio: Audio) -> np.ndarray:
    """F0 of the voiced 10 ms frames, in semitones above 55 Hz."""
    import parselmouth

    sound = parselmouth.Sound(audio.samples.astype(np.float64),
                              sampling_frequency=audio.sample_rate)
    f0 = sound.to_pitch(time_step=0.01, pitch_floor=60.0, pitch_ceiling=500.0
                        ).selected_array["frequency"]
    f0 = f0[f0 > 0]
    return (12.0 * np.log2(f0 / 55.0)).astype(np.float32) if len(f0) else np.zeros(0, np.float32)


def features(audio: Audio) -> np.ndarray:
    """[F0 median, F0 std, MFCC means (13), MFCC stds (13)] of the voiced-loud frames."""
    import librosa

    semis = pitch_semitones(audio)
    wav = resample_array(audio.samples, audio.sample_rate, FEATURE_RATE).astype(np.float32)
    mfcc = librosa.feature.mfcc(y=wav, sr=FEATURE_RATE, n_mfcc=N_MFCC, n_fft=512,
                                hop_length=160, win_length=400)
    energy = mfcc[0]
    loud = mfcc[:, energy > np.percentile(energy, 40)] if mfcc.shape[1] > 4 else mfcc
    pitch = [float(np.median(semis)), float(np.std(semis))] if len(semis) > 5 else [0.0, 0.0]
    return np.concatenate([pitch, loud.mean(axis=1), loud.std(axis=1)]).astype(np.float32)


_GROUPS = (slice(0, 2), slice(2, 2 + N_MFCC), slice(2 + N_MFCC, 2 + 2 * N_MFCC))


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """1 when equal, falling towards 0 as features drift apart by their typical spread.
    Pitch, envelope means and envelope spreads count a third each: two pitch values must
    not drown among 26 envelope values (pitch is the first thing a listener hears)."""
    z = (np.asarray(a, np.float32) - np.asarray(b, np.float32)) / _SCALES
    close = np.exp(-0.5 * z * z)
    return float(np.mean([np.mean(close[group]) for group in _GROUPS]))
