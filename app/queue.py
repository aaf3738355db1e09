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
from models.errors import (
    BackendUnavailable,
    Cancelled,
    Conflict,
    StudioError,
    TransientBackendError,
)
from pipelines import tasks as pipeline_tasks
from pipelines.tasks import Stage

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


@dataclass
class RunningStage(RunningJob):
    """The context of one stage of a staged job: progress goes to the stage's record, and
    the job's progress is recomputed from all its stages (weighted by their cost)."""

    stage: str = ""
    queue: TaskQueue | None = None

    def progress(self, fraction: float, step: str) -> None:
        if self.jobs.cancel_requested(self.job_id):
            raise Cancelled()
        if time.monotonic() > self.deadline:
            raise JobTimeout(f"Stage {self.stage} ran past its time limit.",
                             code="QUEUE_STAGE_TIMEOUT",
                             message_ja=f"ステージ {self.stage} が制限時間を超えました。")
        now = time.monotonic()
        if now - self._last_write >= 0.5 or fraction >= 1.0:
            assert self.queue is not None
            self.queue._stage_progress(self.job_id, self.stage, fraction, step)
            self._last_write = now

    def step_done(self, step: str) -> None:
        """Sub-steps inside a stage are reported through progress only."""


class TaskQueue:
    """Enqueue jobs, run them on huey workers, cancel them, retry them, count them."""

    def __init__(
        self, huey: Huey, jobs: Jobs, storage: Storage, engine_settings: EngineSettings,
        chains: Callable[[str], FallbackChain], *, max_queued: int = 50,
        job_timeout: float = 1800.0, admission: Callable[[], None] | None = None,
    ) -> None:
        self.huey = huey
        self.jobs = jobs
        self.storage = storage
        self.engine_settings = engine_settings
        self.chains = chains
        self.max_queued = max_queued
        self.job_timeout = job_timeout
        self.admission = admission  # raises to refuse new jobs (e.g. disk nearly full)
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"
        self._consumer: Any = None
        self._admit = threading.Lock()  # count-then-create is one step for this process
        self.metrics: Any = None  # set by app.metrics.Metrics.bind
        self.heartbeat = heartbeat.install(huey)  # beats while this process consumes
        pipeline_tasks.load_handlers()
        self.run_job: TaskWrapper = huey.task(name="studio.run_job")(self._run_job)
        self.run_stage: TaskWrapper = huey.task(name="studio.run_stage")(self._run_stage)
        huey.signal(signals.SIGNAL_EXPIRED)(self._on_expired)

    def _on_expired(self, signal: str, task: Task, *args: Any) -> None:
        """huey drops an expired task silently; its job must not wait 'queued' forever."""
        if task.name not in (self.run_job.name, self.run_stage.name) or not task.args:
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
        if kind not in pipeline_tasks.HANDLERS and kind not in pipeline_tasks.STAGED:
            raise KeyError(kind)
        if self.admission is not None:
            self.admission()
        priority = int(min(max(priority, 0), MAX_PRIORITY))
        job_id = uuid.uuid4().hex
        # A burst of concurrent submissions must not all pass the count before any of them
        # is created (seen: 10 accepted of 20 with a limit of 5).
        with self._admit:
            depth = self.jobs.count("queued")  # jobs, not tasks: a message job queues two
            if depth >= self.max_queued:
                raise QueueFull(
                    f"The queue is full ({depth} jobs waiting). Try again shortly.",
                    message_ja=f"キューが満杯です（待機 {depth} 件）。"
                               "しばらくしてから再試行してください。",
                    retry_after=10, details={"queued": depth, "max_queued": self.max_queued},
                )
            if kind in pipeline_tasks.STAGED:
                self.jobs.create(kind, params, pipeline_tasks.STEPS[kind], owner=owner,
                                 priority=priority, job_id=job_id)
            else:
                task = self.run_job.s(job_id, priority=priority, expires=expires)
                job = self.jobs.create(kind, params, pipeline_tasks.STEPS.get(kind, []),
                                       owner=owner, priority=priority, job_id=job_id,
                                       task_id=task.id)
        if kind in pipeline_tasks.STAGED:
            job = self.jobs.update(job_id, attempts=1)
            self._enqueue_ready(job, {}, expires=expires)
            return self.jobs.get(job_id)
        self.huey.enqueue(task)
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.jobs.request_cancel(job_id)
        if job.status == "cancelled" and job.task_id:
            self.huey.revoke_by_id(job.task_id)
        return job

    def retry(self, job_id: str, *, orphaned: bool = False) -> Job:
        """Resume a failed or cancelled job from where it stopped: finished stages are kept
        and not run again; a plain (unstaged) job runs again from the start. ``orphaned``
        also takes a job still marked 'processing' whose worker died (see :meth:`recover`)."""
        job = self.jobs.get(job_id)
        allowed = ("failed", "cancelled", "processing") if orphaned else ("failed", "cancelled")
        if job.status not in allowed:
            raise Conflict(f"Only failed or cancelled jobs can be retried; this one is "
                           f"{job.status}.", code="QUEUE_JOB_NOT_RETRYABLE",
                           message_ja=f"再試行できるのは失敗またはキャンセルしたジョブだけです（現在: {job.status}）。")
        self.jobs.store.clear_flag(job_id, "cancel")
        if job.kind in pipeline_tasks.STAGED:
            records = self.jobs.store.load_stages(job_id)
            for name, record in records.items():
                if record.get("status") not in ("done", "skipped"):
                    record.update(status="pending", progress=0.0, error=None)
                    self.jobs.store.save_stage(job_id, name, record)
            job = self.jobs.update(job_id, reopen=True, status="queued", error=None,
                                   cancel_requested=False, finished_at=None, worker=None,
                                   attempts=job.attempts + 1, current_step="queued")
            self._enqueue_ready(job, self.jobs.store.load_stages(job_id))
            return self.jobs.get(job_id)
        task = self.run_job.s(job_id, priority=job.priority)
        job = self.jobs.update(job_id, reopen=True, status="queued", error=None, progress=0.0,
                               cancel_requested=False, finished_at=None, task_id=task.id,
                               steps_completed=[], current_step="queued",
                               steps_remaining=pipeline_tasks.STEPS.get(job.kind, []))
        self.huey.enqueue(task)
        return job

    # -- staged jobs -----------------------------------------------------------------

    def _stages(self, kind: str) -> list[Stage]:
        return pipeline_tasks.STAGED[kind]

    def _enqueue_ready(self, job: Job, records: dict[str, dict[str, Any]],
                       expires: float | None = None) -> None:
        """Queue every stage whose waits are met, once per run of the job (atomic claim)."""
        settled = {n for n, r in records.items() if r.get("status") in ("done", "skipped")}
        changed = True
        while changed:  # skipped stages can make later ones ready at once
            changed = False
            for stage in self._stages(job.kind):
                if stage.name in settled or not set(stage.after) <= settled:
                    continue
                if stage.when is not None and not stage.when(job.params):
                    self.jobs.store.save_stage(job.id, stage.name,
                                               {"status": "skipped", "progress": 1.0})
                    settled.add(stage.name)
                    changed = True
        stage_index = {st.name: i for i, st in enumerate(self._stages(job.kind))}
        for stage in self._stages(job.kind):
            if stage.name in settled or not set(stage.after) <= settled:
                continue
            if records.get(stage.name, {}).get("status") == "running":
                continue
            if self.jobs.store.set_flag(job.id, f"queued:{job.attempts}:{stage.name}"):
                self.huey.enqueue(self.run_stage.s(job.id, stage.name, job.attempts,
                                                   priority=stage_priority(job, stage_index[
                                                       stage.name]), expires=expires))
        if settled >= {st.name for st in self._stages(job.kind)}:
            self._finish(job)

    def _finish(self, job: Job) -> None:
        if not self.jobs.store.set_flag(job.id, f"finished:{job.attempts}"):
            return
        records = self.jobs.store.load_stages(job.id)
        outputs = {n: r.get("output") or {} for n, r in records.items()
                   if r.get("status") == "done"}
        result = pipeline_tasks.FINISHERS[job.kind](job.params, outputs)
        result["stages"] = [
            {"stage": st.name, "status": records.get(st.name, {}).get("status"),
             "duration": records.get(st.name, {}).get("duration"),
             **{k: v for k, v in (outputs.get(st.name) or {}).items()
                if k in ("backend", "fallback_used", "fallback_method", "engines")}}
            for st in self._stages(job.kind)
        ]
        started = job.started_at or job.created_at
        result.setdefault("processing_time", round(time.time() - started, 3))
        if self.metrics is not None:
            self.metrics.observe_job(job.kind, "completed", time.time() - started)
        self.jobs.update(job.id, status="completed", progress=100.0, current_step="done",
                         result=result, steps_remaining=[],
                         steps_completed=[st.name for st in self._stages(job.kind)])

    def _sync_progress(self, job_id: str, kind: str, records: dict[str, dict[str, Any]],
                       step: str | None = None) -> None:
        stages = self._stages(kind)
        total = sum(st.weight for st in stages) or 1.0
        done = 0.0
        completed, remaining, running = [], [], []
        for st in stages:
            record = records.get(st.name, {})
            status = record.get("status")
            if status in ("done", "skipped"):
                done += st.weight
                completed.append(st.name)
            else:
                remaining.append(st.name)
                if status == "running":
                    done += st.weight * float(record.get("progress", 0.0))
                    running.append(st.name)
        self.jobs.update(job_id, progress=round(min(99.0, 100.0 * done / total), 1),
                         steps_completed=completed, steps_remaining=remaining,
                         current_step=step or (",".join(running) or None))

    def _stage_progress(self, job_id: str, stage: str, fraction: float, step: str) -> None:
        job = self.jobs.get(job_id)
        records = self.jobs.store.load_stages(job_id)
        record = records.get(stage, {})
        record["progress"] = min(max(fraction, 0.0), 1.0)
        record["step"] = step
        self.jobs.store.save_stage(job_id, stage, record)
        records[stage] = record
        self._sync_progress(job_id, job.kind, records, step=f"{stage}: {step}" if step and
                            step != stage else stage)

    def _run_stage(self, job_id: str, stage_name: str, run: int) -> None:
        job = self.jobs.store.load(job_id)
        if job is None or job.final or job.attempts != run:
            return  # gone, finished, failed by a sibling, or superseded by a retry
        if self.jobs.cancel_requested(job_id):
            self.jobs.update(job_id, status="cancelled", current_step="cancelled")
            return
        stage = next(st for st in self._stages(job.kind) if st.name == stage_name)
        records = self.jobs.store.load_stages(job_id)
        record = records.get(stage_name, {})
        if record.get("status") in ("done", "skipped"):
            self._enqueue_ready(job, records)
            return
        record.update(status="running", progress=0.0, attempts=record.get("attempts", 0) + 1,
                      started_at=time.time(), worker=self.worker_name, error=None)
        self.jobs.store.save_stage(job_id, stage_name, record)
        if job.status == "queued":
            job = self.jobs.update(job_id, status="processing",
                                   started_at=job.started_at or time.time(),
                                   worker=self.worker_name)
        records[stage_name] = record
        self._sync_progress(job_id, job.kind, records)
        outputs = {n: r.get("output") or {} for n, r in records.items()
                   if r.get("status") == "done"}
        ctx = RunningStage(job_id, self.storage, self.engine_settings, self.jobs, self.chains,
                           deadline=time.monotonic() + stage.timeout, metrics=self.metrics,
                           stage=stage_name, queue=self)
        started = time.perf_counter()
        try:
            output = stage.run(ctx, job.params, outputs)
        except Cancelled:
            self._stage_failed(job_id, stage_name, record, None)
            self.jobs.update(job_id, status="cancelled", current_step="cancelled")
            return
        except TransientBackendError as exc:
            if record["attempts"] <= stage.retries:
                record.update(status="retrying", error=error_record(exc))
                self.jobs.store.save_stage(job_id, stage_name, record)
                self.huey.enqueue(self.run_stage.s(
                    job_id, stage_name, run,
                    priority=stage_priority(job, self._stages(job.kind).index(stage)),
                    delay=stage.retry_delay * 2 ** (record["attempts"] - 1)))
                log.info("stage retry scheduled", extra={"job_id": job_id, "stage": stage_name})
                return
            self._stage_failed(job_id, stage_name, record, error_record(exc))
            return
        except StudioError as exc:
            self._stage_failed(job_id, stage_name, record, error_record(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the job 'processing'
            log.exception("stage crashed", extra={"job_id": job_id, "stage": stage_name})
            self._stage_failed(job_id, stage_name, record, {
                "code": "QUEUE_JOB_CRASHED", "message": f"Internal error in stage "
                f"{stage_name}: {type(exc).__name__}",
                "message_ja": f"ステージ {stage_name} で内部エラー: {type(exc).__name__}"})
            return
        seconds = time.perf_counter() - started
        record.update(status="done", progress=1.0, output=output or {},
                      duration=round(seconds, 3), finished_at=time.time())
        if self.metrics is not None:
            self.metrics.observe_stage(stage_name, (output or {}).get("backend"), seconds)
        self.jobs.store.save_stage(job_id, stage_name, record)
        records = self.jobs.store.load_stages(job_id)
        job = self.jobs.get(job_id)
        if job.final:
            return
        self._sync_progress(job_id, job.kind, records)
        self._enqueue_ready(job, records)

    def _stage_failed(self, job_id: str, stage: str, record: dict[str, Any],
                      error: dict[str, Any] | None) -> None:
        # keep how far it got: the stage's own progress writes went to the store, not here
        latest = self.jobs.store.load_stages(job_id).get(stage, {})
        record.update(progress=latest.get("progress", record.get("progress")),
                      step=latest.get("step", record.get("step")))
        record.update(status="cancelled" if error is None else "failed", error=error,
                      finished_at=time.time())
        self.jobs.store.save_stage(job_id, stage, record)
        if error is not None:
            job = self.jobs.update(job_id, status="failed", current_step=stage,
                                   error={**error, "stage": stage})
            if self.metrics is not None and job.status == "failed":
                self.metrics.observe_job(job.kind, "failed")
            log.warning("stage failed", extra={"job_id": job_id, "stage": stage,
                                               "code": error.get("code")})

    def recover(self, max_attempts: int = 3) -> list[str]:
        """Jobs left 'processing' by a worker process that died (killed mid-render) are
        resumed, or failed with a clear error after ``max_attempts`` runs. Only workers on
        this host whose process is gone are judged dead."""
        host = socket.gethostname()
        recovered = []
        for job in self.jobs.list(status="processing", limit=10_000):
            workers = {job.worker} if job.worker else set()
            if job.kind in pipeline_tasks.STAGED:
                workers |= {r.get("worker") for r in self.jobs.store.load_stages(job.id).values()
                            if r.get("status") == "running"}
            workers.discard(None)
            if not workers or not all(_worker_dead(w, host) for w in workers):
                continue
            if job.attempts < max_attempts:
                # straight back to 'queued': a poller must never see a passing 'failed'
                self.retry(job.id, orphaned=True)
                log.warning("re-queued job of a dead worker", extra={"job_id": job.id})
            else:
                self.jobs.update(job.id, status="failed", current_step="worker lost", error={
                    "code": "QUEUE_WORKER_LOST",
                    "message": "The worker running this job stopped (process ended), "
                               f"{job.attempts} times.",
                    "message_ja": f"このジョブを実行していたワーカーが {job.attempts} 回停止しました。"})
                log.warning("failed job of a dead worker", extra={"job_id": job.id})
            recovered.append(job.id)
        return recovered

    def stages(self, job_id: str) -> dict[str, dict[str, Any]]:
        return self.jobs.store.load_stages(job_id)

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


def stage_priority(job: Job, index: int) -> int:
    """A stage task's queue priority: the job's own (0-10) first, then later stages before
    earlier ones, so a worker finishes messages already under way before starting the first
    stages of newer ones (first come, first finished; not all finished together at the end)."""
    return job.priority * 100 + index


def _worker_dead(worker: str, host: str) -> bool:
    name, _, pid = worker.rpartition(":")
    if name != host or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # this process: its jobs are tracked by its own threads
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def error_record(exc: StudioError) -> dict[str, Any]:
    record: dict[str, Any] = {"code": exc.code, "message": exc.message,
                              "details": exc.details}
    if exc.message_ja:
        record["message_ja"] = exc.message_ja
    if exc.retry_after is not None:
        record["retry_after"] = exc.retry_after
    return record
