"""Queued work: job kinds and the handlers that run them.

A handler is a plain function ``(ctx, params) -> result dict``. It reads inputs from and
writes artifacts to ``ctx.storage`` by key (stages pass keys, not bytes), reports progress
through ``ctx.progress`` (which raises ``Cancelled`` once a cancel was asked for), and finds
engines through ``ctx.chain(capability)``. ``app/queue.py`` wires these into huey tasks; this
module knows nothing of huey or HTTP, so a test can call a handler directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from models.base import EngineSettings, FallbackChain


class ArtifactStore(Protocol):
    """The part of ``app.storage.Storage`` that pipelines use."""

    def put(self, key: str, data: bytes) -> str: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def url(self, key: str) -> str: ...
    def delete(self, key: str) -> bool: ...


class JobContext(Protocol):
    job_id: str
    storage: ArtifactStore
    engine_settings: EngineSettings

    def progress(self, fraction: float, step: str) -> None:
        """Report 0..1 of this job; raises ``Cancelled`` when the job was cancelled."""
        ...

    def step_done(self, step: str) -> None: ...

    def chain(self, capability: str) -> FallbackChain: ...

    def observe_stage(self, stage: str, backend: str | None, seconds: float) -> None:
        """Record a step's duration and engine for /metrics."""
        ...

    def new_key(self, prefix: str, extension: str) -> str: ...

    def others_waiting(self) -> bool:
        """True when other jobs are queued or running: a long background job may then
        :class:`MakeWay` so that they have the machine."""
        ...


class MakeWay(Exception):
    """Raised by a handler that saved its state and lets waiting work go first: the queue
    puts the job back (``queued``, ``step`` shown) to run again after ``delay`` seconds."""

    def __init__(self, step: str = "waiting", delay: float = 0.0) -> None:
        super().__init__(step)
        self.step = step
        self.delay = delay


JobHandler = Callable[[JobContext, dict[str, Any]], dict[str, Any]]
StageHandler = Callable[[JobContext, dict[str, Any], dict[str, dict[str, Any]]], dict[str, Any]]

HANDLERS: dict[str, JobHandler] = {}
STEPS: dict[str, list[str]] = {}


@dataclass(frozen=True)
class Stage:
    """One step of a staged job: its own queue task, retries and time limit.

    ``run(ctx, params, outputs)`` gets the outputs of every finished stage (storage keys and
    small facts, never media bytes) and returns its own. ``after`` names the stages it waits
    for; stages whose waits are met run side by side. ``weight`` is its share of the job's
    progress (measured cost). ``when(params)`` may skip it.
    """

    name: str
    run: StageHandler
    after: tuple[str, ...] = ()
    weight: float = 1.0
    retries: int = 1
    retry_delay: float = 2.0
    timeout: float = 900.0
    when: Callable[[dict[str, Any]], bool] | None = None


STAGED: dict[str, list[Stage]] = {}


def staged_job(kind: str, stages: list[Stage],
               finish: Callable[[dict[str, Any], dict[str, dict[str, Any]]], dict[str, Any]]
               ) -> None:
    """Register a job kind made of stages; ``finish(params, outputs)`` builds its result."""
    names = [st.name for st in stages]
    for st in stages:
        unknown = set(st.after) - set(names[: names.index(st.name)])
        if unknown:
            raise ValueError(f"stage {st.name} waits for unknown/later stages {unknown}")
    STAGED[kind] = list(stages)
    STEPS[kind] = names
    FINISHERS[kind] = finish


FINISHERS: dict[str, Callable[[dict[str, Any], dict[str, dict[str, Any]]], dict[str, Any]]] = {}


def job_kind(kind: str, steps: list[str]) -> Callable[[JobHandler], JobHandler]:
    """Register a handler under ``kind`` with the step names it reports, in order."""

    def register(handler: JobHandler) -> JobHandler:
        HANDLERS[kind] = handler
        STEPS[kind] = list(steps)
        return handler

    return register


def load_handlers() -> None:
    """Import the pipeline modules that register job kinds (lazily: they pull in engines)."""
    import importlib

    for module in ("pipelines.diagnostics", "pipelines.image_jobs", "pipelines.video_jobs",
                   "pipelines.voice_jobs", "pipelines.voice_evolve_jobs", "pipelines.message"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
