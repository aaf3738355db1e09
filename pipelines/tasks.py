"""Queued work: what a job kind is, and the context its handlers run in.

A handler is a plain function ``(ctx, params) -> result dict``. It reads inputs from and
writes artifacts to ``ctx.storage`` by key (stages pass keys, not bytes), reports progress
through ``ctx.progress`` (which raises ``Cancelled`` once a cancel was asked for), and finds
engines through ``ctx.chain(capability)``. Each job module states its kind as a
:class:`JobKind` constant ``JOB``; ``pipelines.jobs`` lists them; ``app/runner/`` wires them
into huey tasks. This module knows nothing of huey or HTTP, so a test can call a handler
directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from models.base import EngineSettings
from models.chain import FallbackChain


class StoredEntry(Protocol):
    """One stored file as a listing gives it (``app.storage.StoredObject``)."""

    @property
    def key(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def modified(self) -> datetime: ...


class ArtifactStore(Protocol):
    """The part of ``app.storage.Storage`` that pipelines use."""

    def put(self, key: str, data: bytes) -> str: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def url(self, key: str) -> str: ...
    def delete(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> Iterator[StoredEntry]: ...


class JobContext(Protocol):
    @property
    def job_id(self) -> str: ...
    @property
    def storage(self) -> ArtifactStore: ...
    @property
    def engine_settings(self) -> EngineSettings: ...

    def progress(self, fraction: float, step: str) -> None:
        """Report 0..1 of this job; raises ``Cancelled`` when the job was cancelled."""
        ...

    def step_done(self, step: str) -> None: ...

    def chain(self, capability: str) -> FallbackChain[Any]: ...

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
JobFinisher = Callable[[dict[str, Any], dict[str, dict[str, Any]]], dict[str, Any]]


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


@dataclass(frozen=True, init=False)
class JobKind:
    """One kind of queued work: either one ``handler`` run as a single task, or ``stages``
    (each its own task) whose outputs ``finish(params, outputs)`` turns into the result.

    ``steps`` are the step names the job reports, in order; a staged kind's steps are its
    stage names unless given.
    """

    name: str
    steps: tuple[str, ...] = ()
    handler: JobHandler | None = None
    stages: tuple[Stage, ...] = ()
    finish: JobFinisher | None = None

    def __init__(self, name: str, steps: Sequence[str] = (), *,
                 handler: JobHandler | None = None, stages: Sequence[Stage] = (),
                 finish: JobFinisher | None = None) -> None:
        if (handler is None) == (not stages) or bool(stages) != (finish is not None):
            raise ValueError(f"job kind {name}: give either a handler, or stages and finish")
        names = [st.name for st in stages]
        for index, st in enumerate(stages):
            unknown = set(st.after) - set(names[:index])
            if unknown:
                raise ValueError(f"stage {st.name} waits for unknown/later stages {unknown}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "steps", tuple(steps) if steps or not stages else tuple(names))
        object.__setattr__(self, "handler", handler)
        object.__setattr__(self, "stages", tuple(stages))
        object.__setattr__(self, "finish", finish)

    @property
    def staged(self) -> bool:
        return bool(self.stages)

    def stage(self, name: str) -> Stage:
        return next(st for st in self.stages if st.name == name)


class JobRegistry:
    """The job kinds a queue can run, by name. Built once from an explicit list
    (``pipelines.jobs.job_kinds``); :meth:`added` lends extra kinds to a test."""

    def __init__(self, kinds: Iterable[JobKind] = ()) -> None:
        self._kinds: dict[str, JobKind] = {}
        for kind in kinds:
            self._add(kind)

    def _add(self, kind: JobKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name} is listed twice")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> JobKind | None:
        return self._kinds.get(name)

    def __getitem__(self, name: str) -> JobKind:
        return self._kinds[name]

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def steps(self, name: str) -> list[str]:
        """The kind's step names, or none for a kind this registry does not hold."""
        kind = self._kinds.get(name)
        return list(kind.steps) if kind is not None else []

    @contextmanager
    def added(self, *kinds: JobKind) -> Iterator[None]:
        """Hold ``kinds`` for the length of a ``with`` block (tests' own job kinds)."""
        taken = [kind.name for kind in kinds if kind.name in self._kinds]
        if taken:
            raise ValueError(f"job kind {taken[0]} is listed twice")
        for kind in kinds:
            self._add(kind)
        try:
            yield
        finally:
            for kind in kinds:
                self._kinds.pop(kind.name, None)
