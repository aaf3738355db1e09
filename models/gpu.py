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
    """``cuda`` when asked for or available (and not forbidden), else ``cpu``."""
    if preference == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"
