"""The context a job's handler (or one stage of a staged job) runs in, and how a run's
failure is written into the job's record.

:class:`RunningJob` is the :class:`pipelines.tasks.JobContext` of an unstaged job: it reports
progress into the job's record, honours a cancel and the time limit, and writes only while
its run holds the lease (``app.runner.leases``). :class:`RunningStage` does the same for one
stage; it hands its progress to the callback it is given (the stage scheduler's, which rolls
it up into the job's: ``app.runner.stages``). What a run observes (stages and steps done,
engine chains run) goes out as events (``app.runner.events``) to whoever listens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from huey.api import Huey

from app.runner.events import ChainRan, Events, StageDone, StepDone
from app.runner.jobs import Jobs
from app.runner.leases import LeaseKeeper, LeaseLost
from app.storage import Storage, new_key
from models.base import EngineSettings
from models.chain import ChainExhausted, ChainResult, FallbackChain
from models.errors import Cancelled, StudioError
from pipelines.tasks import JobRegistry

StageReport = Callable[[float, str], None]
"""Where a running stage sends its progress: ``report(fraction, step)``."""


@dataclass(frozen=True)
class WorkerParts:
    """What the parts that run jobs on a worker work with (the unstaged runner and the stage
    scheduler alike): built once by ``app.services.build_queue``."""

    huey: Huey
    jobs: Jobs
    storage: Storage
    engine_settings: EngineSettings
    chains: Callable[[str], FallbackChain[Any]]
    kinds: JobRegistry
    leases: LeaseKeeper
    events: Events
    worker_name: str


class JobTimeout(StudioError):
    kind = "internal"
    default_code = "QUEUE_JOB_TIMEOUT"


@dataclass
class RunningJob:
    """The :class:`pipelines.tasks.JobContext` a handler receives."""

    job_id: str
    storage: Storage
    engine_settings: EngineSettings
    jobs: Jobs
    chains: Callable[[str], FallbackChain[Any]]
    deadline: float
    events: Events | None = None  # the runner's: stages, steps and chain runs go there
    lease: str | None = None  # this run's lease token (writes count only while it holds)
    leases: LeaseKeeper | None = None
    waiting: Callable[[], int] | None = None  # how many other jobs are queued or running
    _last_write: float = field(default=0.0)
    _last_fraction: float = field(default=-1.0)
    _stage_started: float = field(default_factory=time.perf_counter)
    _observed: set[str] = field(default_factory=set)

    def check_lease(self) -> None:
        if self.lease is not None and self.leases is not None and self.leases.lost(self.lease):
            raise LeaseLost("Another worker took this work over.")

    def progress(self, fraction: float, step: str) -> None:
        if self.jobs.cancel_requested(self.job_id):
            raise Cancelled()
        self.check_lease()
        if time.monotonic() > self.deadline:
            raise JobTimeout("The job ran past its time limit.", code="QUEUE_JOB_TIMEOUT",
                             message_ja="ジョブが制限時間を超えました。")
        now = time.monotonic()
        # Cheap enough to call per frame: write at most a few times a second.
        if now - self._last_write >= 0.25 or fraction >= 1.0 or fraction < self._last_fraction:
            job = self.jobs.update(
                self.job_id, holder=self.lease,
                progress=round(100.0 * min(max(fraction, 0.0), 1.0), 1), current_step=step)
            if self.lease is not None and job.lease != self.lease:
                raise LeaseLost("Another worker took this job over.")
            self._last_write = now
            self._last_fraction = fraction

    def step_done(self, step: str) -> None:
        self.check_lease()
        self.jobs.step_done(self.job_id, step, holder=self.lease)
        now = time.perf_counter()
        if self.events is not None and step not in self._observed:
            self.events.send(StepDone(step, now - self._stage_started))
        self._stage_started = now

    def observe_stage(self, stage: str, backend: str | None, seconds: float) -> None:
        """Say how long ``stage`` took on ``backend`` (``app.metrics`` listens)."""
        self._observed.add(stage)
        if self.events is not None:
            self.events.send(StageDone(stage, backend, seconds))

    def chain(self, capability: str) -> FallbackChain[Any]:
        chain = self.chains(capability)
        if self.events is None or not self.events.listening(ChainRan):
            return chain
        return chain.observed(self._chain_ran)

    def _chain_ran(self, capability: str, outcome: ChainResult[Any] | ChainExhausted) -> None:
        if self.events is not None:
            self.events.send(ChainRan(capability, outcome))

    def new_key(self, prefix: str, extension: str) -> str:
        return new_key(prefix, extension)

    def others_waiting(self) -> bool:
        return self.waiting is not None and self.waiting() > 0


@dataclass
class RunningStage(RunningJob):
    """The context of one stage of a staged job: progress goes to the stage's record, and
    the job's progress is recomputed from all its stages (weighted by their cost)."""

    stage: str = ""
    report: StageReport | None = None  # given by the stage scheduler
    _last_step: str = ""

    def progress(self, fraction: float, step: str) -> None:
        if self.jobs.cancel_requested(self.job_id):
            raise Cancelled()
        self.check_lease()
        if time.monotonic() > self.deadline:
            raise JobTimeout(f"Stage {self.stage} ran past its time limit.",
                             code="QUEUE_STAGE_TIMEOUT",
                             message_ja=f"ステージ {self.stage} が制限時間を超えました。")
        now = time.monotonic()
        # a new step is written at once (a short one, such as the encode, must show)
        if now - self._last_write >= 0.5 or fraction >= 1.0 or step != self._last_step:
            assert self.report is not None
            self.report(fraction, step)
            self._last_write = now
            self._last_step = step

    def step_done(self, step: str) -> None:
        """Sub-steps inside a stage are reported through progress only."""


def storage_error(exc: BaseException) -> dict[str, Any] | None:
    """A full or read-only disk met outside ``Storage`` (a temp file, ffmpeg's output) reads
    as the storage error it is, not as an internal crash."""
    from app.storage import os_error_record

    return os_error_record(exc)


def error_record(exc: StudioError) -> dict[str, Any]:
    record: dict[str, Any] = {"code": exc.code, "message": exc.message,
                              "details": exc.details}
    if exc.message_ja:
        record["message_ja"] = exc.message_ja
    if exc.retry_after is not None:
        record["retry_after"] = exc.retry_after
    return record
