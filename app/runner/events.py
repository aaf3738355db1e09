"""What the job runner tells whoever listens, so that nobody reaches into it to find out.

Modelled on huey's signals (``huey.signals``): a small registry of receivers. A receiver is
connected for some kinds of event (or all) and called with each event of those kinds as it
happens, in the thread where it happens. A receiver that raises is logged and skipped: a
listener (``app.metrics``) never stops a job.

The events, all in the process that does the work:

* :class:`JobFinished`: a job reached a final status (``completed``, ``failed``,
  ``cancelled``), with the seconds it ran when known.
* :class:`StageDone`: a pipeline stage finished on an engine (``backend``), in seconds.
* :class:`StepDone`: a step the handler did not time itself, timed by the runner between
  two ``step_done`` calls (engine unknown).
* :class:`ChainRan`: an engine chain ran inside a job: its result, or why it found no engine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.chain import ChainExhausted, ChainResult

log = logging.getLogger("studio.events")


@dataclass(frozen=True)
class JobFinished:
    kind: str
    status: str
    seconds: float | None = None


@dataclass(frozen=True)
class StageDone:
    stage: str
    backend: str | None
    seconds: float


@dataclass(frozen=True)
class StepDone:
    step: str
    seconds: float


@dataclass(frozen=True)
class ChainRan:
    capability: str
    outcome: ChainResult[Any] | ChainExhausted


Event = JobFinished | StageDone | StepDone | ChainRan
Receiver = Callable[[Event], None]


class Events:
    """The runner's receivers: ``connect(receiver, *kinds)``, ``send(event)``."""

    def __init__(self) -> None:
        self._receivers: list[tuple[Receiver, tuple[type[Event], ...]]] = []
        self._lock = threading.Lock()

    def connect(self, receiver: Receiver, *kinds: type[Event]) -> None:
        """Call ``receiver`` with each event of ``kinds`` (every event when none given)."""
        with self._lock:
            self._receivers.append((receiver, kinds))

    def disconnect(self, receiver: Receiver) -> None:
        with self._lock:
            self._receivers = [(r, k) for r, k in self._receivers if r != receiver]

    def listening(self, kind: type[Event]) -> bool:
        """Whether any receiver hears ``kind`` (an event costly to make can be skipped)."""
        with self._lock:
            return any(not kinds or kind in kinds for _, kinds in self._receivers)

    def send(self, event: Event) -> None:
        with self._lock:
            receivers = [r for r, kinds in self._receivers if not kinds or type(event) in kinds]
        for receiver in receivers:
            try:
                receiver(event)
            except Exception:  # a listener must not stop the work it listens to
                log.exception("event receiver failed", extra={"event": type(event).__name__})
