"""A circuit breaker around a remote engine (VOICEVOX, AWS, D-ID).

After ``threshold`` failures in a row the circuit opens: the engine reports itself
unavailable (so the chain moves on at once instead of waiting on timeouts) until
``cooldown`` seconds pass; then one trial call is let through (half-open). A success closes
it again. The state is visible through ``available()`` in ``/health`` and the Engines panel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from models.chain import Engine
from models.errors import BackendUnavailable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """Wraps an engine; every public method call is counted as a success or a failure."""

    def __init__(self, engine: Engine, *, threshold: int = 3, cooldown: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.name = engine.name
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    @property
    def circuit_state(self) -> str:
        """``closed``, ``open`` or ``half_open`` (the inventory row's ``circuit`` field)."""
        return self.state

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._clock() - self._opened_at >= self.cooldown:
            return HALF_OPEN
        return OPEN

    def available(self) -> tuple[bool, str]:
        with self._lock:
            state = self._state()
            if state == OPEN:
                left = self.cooldown - (self._clock() - (self._opened_at or 0.0))
                return False, (f"circuit open after {self._failures} failures; "
                               f"retrying in {left:.0f} s")
            if state == HALF_OPEN and self._trial_running:
                return False, "circuit half-open: a trial call is running"
        return self.engine.available()

    def close(self) -> None:
        self.engine.close()

    def _before(self) -> None:
        with self._lock:
            state = self._state()
            if state == OPEN:
                raise BackendUnavailable(f"{self.name}: circuit open",
                                         code="ENGINE_CIRCUIT_OPEN", retry_after=self.cooldown)
            if state == HALF_OPEN:
                if self._trial_running:
                    raise BackendUnavailable(f"{self.name}: circuit half-open",
                                             code="ENGINE_CIRCUIT_OPEN",
                                             retry_after=self.cooldown)
                self._trial_running = True

    def _after(self, ok: bool) -> None:
        with self._lock:
            self._trial_running = False
            if ok:
                self._failures = 0
                self._opened_at = None
                return
            self._failures += 1
            if self._failures >= self.threshold or self._opened_at is not None:
                self._opened_at = self._clock()

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self.engine, attr)
        if attr.startswith("_") or not callable(target):
            return target

        def guarded(*args: Any, **kwargs: Any) -> Any:
            self._before()
            try:
                value = target(*args, **kwargs)
            except BackendUnavailable:
                self._after(False)
                raise
            except BaseException:
                self._after(True)  # bad input or a bug is not the remote being down
                raise
            self._after(True)
            return value

        return guarded
