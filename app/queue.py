"""The huey queue and the bridge from a huey task to a pipeline job handler.

``STUDIO_QUEUE_URL`` picks the storage: ``sqlite:///path`` (default, a file in the data
dir), ``redis://host:port/db`` (PriorityRedisHuey, so job priorities are honoured, and any
number of ``huey_consumer app.worker.huey`` processes), or ``memory://`` (tests). The app
starts in-process consumer threads (``STUDIO_WORKERS``); with 0 it only enqueues.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from huey import MemoryHuey, PriorityRedisHuey, SqliteHuey, signals
from huey.api import Huey, Task, TaskWrapper

from app import heartbeat
from app.jobs import Job, Jobs
from app.storage import Storage, new_key
from models.base import EngineSettings, FallbackChain
from models.errors import BackendUnavailable, Cancelled, StudioError
from pipelines import tasks as pipeline_tasks

log = logging.getLogger("studio.queue")

HUEY_NAME = "studio"
MAX_PRIORITY = 10


class QueueFull(BackendUnavailable):
    default_code = "QUEUE_FULL"


class JobTimeout(StudioError):
    kind = "internal"
    default_code = "QUEUE_JOB_TIMEOUT"


def create_huey(url: str, *, immediate: bool = False) -> Huey:
    parsed = urlparse(url)
    if parsed.scheme in ("redis", "rediss"):
        return PriorityRedisHuey(HUEY_NAME, url=url, immediate=immediate)
    if parsed.scheme == "memory":
        return MemoryHuey(HUEY_NAME, immediate=immediate)
    path = parsed.path if parsed.netloc == "" else f"/{parsed.netloc}{parsed.path}"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return SqliteHuey(HUEY_NAME, filename=path, immediate=immediate)


@dataclass
class RunningJob:
    """The :class:`pipelines.tasks.JobContext` a handler receives."""

    job_id: str
    storage: Storage
    engine_settings: EngineSettings
    jobs: Jobs
    chains: Callable[[str], FallbackChain]
    deadline: float
    metrics: Any = None  # app.metrics.Metrics of this process, when bound
    _last_write: float = field(default=0.0)
    _last_fraction: float = field(default=-1.0)
    _stage_started: float = field(default_factory=time.perf_counter)
    _observed: set[str] = field(default_factory=set)

    def progress(self, fraction: float, step: str) -> None:
        if self.jobs.cancel_requested(self.job_id):
            raise Cancelled()
        if time.monotonic() > self.deadline:
            raise JobTimeout("The job ran past its time limit.", code="QUEUE_JOB_TIMEOUT",
                             message_ja="ジョブが制限時間を超えました。")
        now = time.monotonic()
        # Cheap enough to call per frame: write at most a few times a second.
        if now - self._last_write >= 0.25 or fraction >= 1.0 or fraction < self._last_fraction:
            self.jobs.update(self.job_id, progress=round(100.0 * min(max(fraction, 0.0), 1.0), 1),
                             current_step=step)
            self._last_write = now
            self._last_fraction = fraction

    def step_done(self, step: str) -> None:
        self.jobs.step_done(self.job_id, step)
        now = time.perf_counter()
        if self.metrics is not None and step not in self._observed:
            self.metrics.observe_step(step, now - self._stage_started)
        self._stage_started = now

    def observe_stage(self, stage: str, backend: str | None, seconds: float) -> None:
        """Record how long ``stage`` took on ``backend`` (see ``app.metrics``)."""
        self._observed.add(stage)
        if self.metrics is not None:
            self.metrics.observe_stage(stage, backend, seconds)

    def chain(self, capability: str) -> FallbackChain:
        chain = self.chains(capability)
        return chain if self.metrics is None else self.metrics.observed(chain)

    def new_key(self, prefix: str, extension: str) -> str:
        return new_key(prefix, extension)


class TaskQueue:
    """Enqueue jobs, run them on huey workers, cancel them, count them."""

    def __init__(
        self, huey: Huey, jobs: Jobs, storage: Storage, engine_settings: EngineSettings,
        chains: Callable[[str], FallbackChain], *, max_queued: int = 50,
        job_timeout: float = 1800.0,
    ) -> None:
        self.huey = huey
        self.jobs = jobs
        self.storage = storage
        self.engine_settings = engine_settings
        self.chains = chains
        self.max_queued = max_queued
        self.job_timeout = job_timeout
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"
        self._consumer: Any = None
        self.metrics: Any = None  # set by app.metrics.Metrics.bind
        self.heartbeat = heartbeat.install(huey)  # beats while this process consumes
        pipeline_tasks.load_handlers()
        self.run_job: TaskWrapper = huey.task(name="studio.run_job")(self._run_job)
        huey.signal(signals.SIGNAL_EXPIRED)(self._on_expired)

    def _on_expired(self, signal: str, task: Task, *args: Any) -> None:
        """huey drops an expired task silently; its job must not wait 'queued' forever."""
        if task.name != self.run_job.name or not task.args:
            return
        job_id = task.args[0]
        job = self.jobs.store.load(job_id)
        if job is not None and not job.final:
            self.jobs.update(job_id, status="failed", current_step="expired", error={
                "code": "QUEUE_JOB_EXPIRED",
                "message": "The job waited in the queue past its expiry and was not run.",
                "message_ja": "ジョブは有効期限を過ぎたため実行されませんでした。"})

    # -- the worker side -------------------------------------------------------------

    def _run_job(self, job_id: str) -> None:
        job = self.jobs.store.load(job_id)
        if job is None:
            log.warning("job vanished before it ran", extra={"job_id": job_id})
            return
        if job.status == "cancelled" or self.jobs.cancel_requested(job_id):
            self.jobs.update(job_id, status="cancelled", current_step="cancelled")
            return
        handler = pipeline_tasks.HANDLERS.get(job.kind)
        if handler is None:
            self.jobs.update(job_id, status="failed", error={
                "code": "QUEUE_UNKNOWN_JOB", "message": f"Unknown job kind {job.kind!r}."})
            return
        self.jobs.start(job_id, self.worker_name)
        ctx = RunningJob(job_id, self.storage, self.engine_settings, self.jobs, self.chains,
                         deadline=time.monotonic() + self.job_timeout, metrics=self.metrics)
        started = time.perf_counter()
        try:
            result = handler(ctx, job.params)
        except Cancelled:
            self.jobs.update(job_id, status="cancelled", current_step="cancelled")
            log.info("job cancelled", extra={"job_id": job_id})
            return
        except StudioError as exc:
            self.jobs.update(job_id, status="failed", error=error_record(exc))
            log.warning("job failed", extra={"job_id": job_id, "code": exc.code})
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the job 'processing'
            log.exception("job crashed", extra={"job_id": job_id})
            self.jobs.update(job_id, status="failed", error={
                "code": "QUEUE_JOB_CRASHED", "message": f"Internal error: {type(exc).__name__}",
                "message_ja": f"内部エラー: {type(exc).__name__}"})
            return
        result = dict(result or {})
        result.setdefault("processing_time", round(time.perf_counter() - started, 3))
        self.jobs.update(job_id, status="completed", progress=100.0, current_step="done",
                         result=result, steps_remaining=[])

    # -- the app side ----------------------------------------------------------------

    def submit(
        self, kind: str, params: dict[str, Any], *, owner: str | None = None,
        priority: int = 0, expires: float | None = None,
    ) -> Job:
        if kind not in pipeline_tasks.HANDLERS:
            raise KeyError(kind)
        depth = self.depth()
        if depth >= self.max_queued:
            raise QueueFull(
                f"The queue is full ({depth} jobs waiting). Try again shortly.",
                message_ja=f"キューが満杯です（待機 {depth} 件）。"
                           "しばらくしてから再試行してください。",
                retry_after=10, details={"queued": depth, "max_queued": self.max_queued},
            )
        priority = int(min(max(priority, 0), MAX_PRIORITY))
        job_id = uuid.uuid4().hex
        task = self.run_job.s(job_id, priority=priority, expires=expires)
        job = self.jobs.create(kind, params, pipeline_tasks.STEPS.get(kind, []), owner=owner,
                               priority=priority, job_id=job_id, task_id=task.id)
        self.huey.enqueue(task)
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.jobs.request_cancel(job_id)
        if job.status == "cancelled" and job.task_id:
            self.huey.revoke_by_id(job.task_id)
        return job

    def depth(self) -> int:
        try:
            return int(self.huey.pending_count())
        except Exception:  # noqa: BLE001 - a broken queue reads as unknown, not a crash
            return -1

    def health(self) -> tuple[bool, str]:
        try:
            depth = self.huey.pending_count()
        except Exception as exc:  # noqa: BLE001
            return False, f"queue unreachable: {exc}"
        return True, f"{type(self.huey).__name__}, {depth} pending"

    # -- in-process consumer ---------------------------------------------------------

    def start_consumer(self, workers: int, *, install_signals: bool = True) -> None:
        """Start worker threads. Call from the main thread (huey installs signal handlers)."""
        if workers <= 0 or self._consumer is not None:
            return
        consumer = self.huey.create_consumer(workers=workers, worker_type="thread",
                                             periodic=True, check_worker_health=True)
        if not install_signals or threading.current_thread() is not threading.main_thread():
            consumer._set_signal_handlers = lambda: None  # only the main thread may
        consumer.start()
        self._consumer = consumer

    def stop_consumer(self) -> None:
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None


def error_record(exc: StudioError) -> dict[str, Any]:
    record: dict[str, Any] = {"code": exc.code, "message": exc.message,
                              "details": exc.details}
    if exc.message_ja:
        record["message_ja"] = exc.message_ja
    if exc.retry_after is not None:
        record["retry_after"] = exc.retry_after
    return record
