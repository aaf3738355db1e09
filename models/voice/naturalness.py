"""How natural speech sounds, predicted: the guard that keeps a profile's voice a voice.

A profile's serving measure (:mod:`pipelines.voice.serving`) passes over any candidate whose
predicted naturalness falls too far below the plain built-in voice's. Two predictors whose
weights ship inside their wheels (nothing is downloaded):

* :class:`DistillMos` — DistillMOS (Stahl & Gamper, 2025: an XLS-R speech-quality model
  distilled into a small convolutional transformer; ``distillmos`` + ``xls-r-sqa``, MIT).
  It hears what a vocoder or a filter does to a voice (frame matching: 4.3 -> 1.4 on one
  speaker) where DNSMOS barely moves, so it is first.
* :class:`DnsMos` — Microsoft's DNSMOS P.835 model (``speechmos``, MIT), its overall
  quality (OVRL): the fallback, and a second guard on the built-in voices.

``distillmos`` and ``xls-r-sqa`` declare ``torchaudio``, which would pull another torch
build: they are installed with ``--no-deps`` (README, ``.ci/run``). Their only use of
torchaudio is a command-line file reader, so when torchaudio is absent an empty module
stands in for it while the package imports.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from typing import Any

import numpy as np

from models.base import Audio, EngineSettings, LazyModel, module_available
from models.speech.dsp import resample_array
from models.torch_threads import one_thread

RATE = 16000
MAX_SECONDS = 20.0
"""Longer speech is judged on its first seconds: the serving measure's sentences are short."""


def _samples(audio: Audio) -> np.ndarray:
    x = resample_array(np.asarray(audio.samples, np.float32), audio.sample_rate, RATE)
    return np.asarray(np.clip(x[: int(MAX_SECONDS * RATE)], -1.0, 1.0), np.float32)


def _load_distillmos() -> Any:
    stub: types.ModuleType | None = None
    if "torchaudio" not in sys.modules and importlib.util.find_spec("torchaudio") is None:
        stub = sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        import distillmos
    finally:  # nobody else may take the stand-in for torchaudio
        if stub is not None and sys.modules.get("torchaudio") is stub:
            del sys.modules["torchaudio"]

    model = distillmos.ConvTransformerSQAModel()
    model.eval()
    return model


class DistillMos:
    """DistillMOS predicted MOS (1-5), torch on the CPU."""

    name = "distillmos"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self._model: LazyModel[Any] = LazyModel(_load_distillmos)

    def available(self) -> tuple[bool, str]:
        for module in ("distillmos", "xls_r_sqa", "torch"):
            ok, why = module_available(module)
            if not ok:
                return False, f"{why} (pip install --no-deps distillmos xls-r-sqa)"
        return True, "DistillMOS (weights in the wheel)"

    def close(self) -> None:
        self._model.clear()

    def naturalness(self, audio: Audio) -> float:
        import torch

        x = _samples(audio)
        if len(x) < RATE // 2:
            return 1.0
        model = self._model.get()
        # No lock: threads judge side by side (a profile's languages, :mod:`pipelines.voice.
        # serving`); an eval-mode forward changes nothing in the model (the same scores bit
        # for bit, tests/models/voice/test_side_by_side.py).
        with one_thread(), torch.no_grad():
            return float(model(torch.from_numpy(x)[None])[0, 0])


class DnsMos:
    """DNSMOS P.835 predicted overall quality (OVRL, 1-5), onnxruntime. The package's model
    reads 9 s windows (shorter speech is repeated to fill one), about 2 s of two cores per
    sentence here: too slow to hear each conversion a profile tries, quick enough for each
    built-in voice once per install (:mod:`pipelines.voice.serving`)."""

    name = "dnsmos_ovrl"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        ok, why = module_available("speechmos")
        return (True, "DNSMOS P.835 (weights in the wheel)") if ok else (False, why)

    def close(self) -> None:
        pass

    def naturalness(self, audio: Audio) -> float:
        from speechmos import dnsmos

        x = _samples(audio)
        if len(x) < RATE // 2:
            return 1.0
        with self._lock:  # the package keeps one global model
            return float(dnsmos.run(x, RATE)["ovrl_mos"])
