"""Where torch engines run, and the Hugging Face ZeroGPU hook.

On a ZeroGPU Space the GPU exists only inside functions decorated with ``spaces.GPU``,
which run in a separate process. Engines wrap their torch inference with :func:`gpu_task`:
it is that decorator when the ``spaces`` package is present on a Space, and a plain call
everywhere else.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def on_zero_gpu() -> bool:
    return bool(os.environ.get("SPACE_ID")) and importlib.util.find_spec("spaces") is not None


def gpu_task(duration: int = 60) -> Callable[[F], F]:
    """Decorate a function that does GPU work (``duration``: ZeroGPU's time budget, s)."""

    def wrap(fn: F) -> F:
        if not on_zero_gpu():
            return fn
        import spaces  # type: ignore[import-not-found]

        return functools.wraps(fn)(spaces.GPU(duration=duration)(fn))  # type: ignore[return-value]

    return wrap


def torch_device(preference: str = "auto") -> str:
    """``cuda`` when asked for or available (and not forbidden), else ``cpu``. On a ZeroGPU
    Space the GPU is only there inside ``spaces.GPU`` calls, but ``spaces`` makes ``cuda``
    usable for loading, so ``auto`` picks it there too."""
    if preference == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    if torch.cuda.is_available() or (preference == "cuda" and on_zero_gpu()):
        return "cuda"
    return "cpu"


def half_precision(device: str) -> bool:
    """Whether to run a half-precision-safe model in float16 (CUDA only; CPU float16 is slow)."""
    return device.startswith("cuda")


def batch_size(device: str, per_item_mb: float, default: int, most: int = 256) -> int:
    """How many items to run at once: ``default`` on the CPU; on a GPU what half the free
    memory holds at ``per_item_mb`` each (at least 1, at most ``most``)."""
    if not device.startswith("cuda"):
        return default
    try:
        import torch

        free, _total = torch.cuda.mem_get_info()
    except Exception:  # no CUDA context (ZeroGPU outside a call): the default
        return default
    return max(1, min(most, int(free * 0.5 / (per_item_mb * 2**20))))


# ------------------------------------------------------------------ models for GPU calls
# ZeroGPU runs each ``spaces.GPU`` function in another process and pickles its arguments,
# so GPU functions are module-level functions that get a key, not a model or a bound
# method of an engine holding one: the model is looked up here (the worker inherits this
# table when it forks).

_LIVE: dict[str, tuple[Any, threading.Lock]] = {}


def keep(key: str, model: Any) -> str:
    """Make ``model`` reachable from GPU functions under ``key``."""
    _LIVE[key] = (model, threading.Lock())
    return key


def live(key: str) -> tuple[Any, threading.Lock]:
    """The model kept under ``key`` and the lock that serialises calls on it."""
    return _LIVE[key]


def drop(key: str) -> None:
    _LIVE.pop(key, None)
