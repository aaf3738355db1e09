"""The small torch models (the speaker encoder, DistillMOS) run on one intra-op thread: on a
few shared cores extra threads only spin at barriers (DistillMOS took 3-4 times as long on
two threads as on one, measured). The process's own setting comes back afterwards, also
when two callers overlap."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch

from models.base import Audio, LazyModel
from models.torch_threads import one_thread


class Spy(torch.nn.Module):
    """Stands in for DistillMOS: records the intra-op thread count its forward ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.threads.append(torch.get_num_threads())
        return torch.full((x.shape[0], 1), 3.5)


@pytest.fixture
def two_threads() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_distillmos_judges_on_one_thread_and_gives_the_setting_back(two_threads: Any) -> None:
    from models.voice.naturalness import DistillMos

    judge = DistillMos()
    spy = Spy()
    judge._model = LazyModel(lambda: spy)
    speech = Audio(np.sin(np.arange(16000) / 8.0).astype(np.float32), 16000)
    assert judge.naturalness(speech) == 3.5
    assert spy.threads == [1]
    assert torch.get_num_threads() == 2


def test_each_caller_gets_one_thread_and_keeps_its_own_setting(two_threads: Any) -> None:
    """Two threads inside at once, leaving in the other order than they came in: each ran
    on one thread, and each has its own count back afterwards."""
    inside, leave = threading.Event(), threading.Event()
    seen: dict[str, list[int]] = {"other": [], "main": []}

    def other() -> None:
        torch.set_num_threads(2)
        with one_thread():
            seen["other"].append(torch.get_num_threads())
            inside.set()
            leave.wait(10)
        seen["other"].append(torch.get_num_threads())

    worker = threading.Thread(target=other)
    worker.start()
    inside.wait(10)
    with one_thread():  # enters while the other caller is inside, leaves before it
        seen["main"].append(torch.get_num_threads())
    seen["main"].append(torch.get_num_threads())
    leave.set()
    worker.join(10)
    assert seen == {"other": [1, 2], "main": [1, 2]}
