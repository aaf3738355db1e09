"""The naturalness judge and the speaker encoder run in two threads at once and hear exactly
what they hear one call after the other: a profile's languages are measured side by side
(:func:`pipelines.voice.serving.measure_serving`), with no lock around either model."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from models.base import Audio, EngineSettings
from models.voice.naturalness import DistillMos
from models.voice.resemblyzer import ResemblyzerEncoder
from tests.conftest import unavailable

CLIP = Path(__file__).parents[2] / "fixtures" / "data" / "librispeech_1998-15444-0002_8s.flac"


def pieces() -> list[Audio]:
    """Six different stretches of real speech, 2.5-4 s."""
    samples, rate = sf.read(CLIP, dtype="float32")
    rate = int(rate)
    return [Audio(samples[int(start * rate): int((start + length) * rate)], rate)
            for start, length in ((0.0, 4.0), (1.0, 3.0), (2.0, 4.0), (3.5, 2.5), (4.0, 4.0),
                                  (0.5, 3.5))]


def side_by_side(hear: Callable[[Audio], np.ndarray], model: Any) -> None:
    """``hear`` gives the same arrays in two threads at once as alone, and the two threads'
    forward passes of ``model`` (timed by its own hooks) did overlap."""
    clips = pieces()
    alone = [hear(c) for c in clips]
    spans: dict[int, list[tuple[float, float]]] = {}
    began = threading.local()

    def before(*_: Any) -> None:
        began.at = time.perf_counter()

    def after(*_: Any) -> None:
        spans.setdefault(threading.get_ident(), []).append((began.at, time.perf_counter()))

    start = threading.Barrier(2)

    def worker(_: int) -> list[np.ndarray]:
        start.wait()
        return [hear(clip) for clip in clips]

    hooks = [model.register_forward_pre_hook(before), model.register_forward_hook(after)]
    try:
        with ThreadPoolExecutor(2) as pool:
            together = list(pool.map(worker, (0, 1)))
    finally:
        for hook in hooks:
            hook.remove()
    for heard in together:
        for one, other in zip(alone, heard, strict=True):
            np.testing.assert_array_equal(one, other)
    first, second = spans.values()
    overlapped = any(a0 < b1 and b0 < a1 for a0, a1 in first for b0, b1 in second)
    assert overlapped, "the two threads never ran the model at the same time"


@pytest.mark.slow
def test_distillmos_judges_side_by_side() -> None:
    judge = DistillMos()
    if not judge.available()[0]:
        unavailable(judge.available()[1])
    side_by_side(lambda audio: np.array([judge.naturalness(audio)]), judge._model.get())


def test_resemblyzer_embeds_side_by_side(tmp_path: Path) -> None:
    encoder = ResemblyzerEncoder(EngineSettings(cache_dir=tmp_path))
    if not encoder.available()[0]:
        unavailable(encoder.available()[1])
    side_by_side(encoder.embed_one, encoder._model.get())
