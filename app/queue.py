"""The huey queue and the bridge from a huey task to a pipeline job handler.

:class:`TaskQueue` is the one door: submit, cancel, retry, count. It runs unstaged jobs
itself; staged jobs go through its stage scheduler (``app.stages``) and dead workers' work
through its reaper (``app.reaper``). The kinds it runs come from ``pipelines.jobs``.

``STUDIO_QUEUE_URL`` picks the storage: ``sqlite:///path`` (default, a file in the data
dir), ``redis://host:port/db`` (PriorityRedisHuey, so job priorities are honoured, and any
number of ``huey_consumer app.worker.huey`` processes), or ``memory://`` (tests). The app
starts in-process consumer threads (``STUDIO_WORKERS``); with 0 it only enqueues.

Each run holds a lease on its stage (or unstaged job) and writes only while it holds it
(``app.leases``); what dead workers leave is taken back by ``app.reaper``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from huey import MemoryHuey, PriorityRedisHuey, SqliteHuey, signals
from huey.api import Huey, Task, TaskWrapper

from app import heartbeat
from app.jobs import Job, Jobs
from app.leases import DEFAULT_SECONDS, LeaseKeeper, LeaseLost, new_token
from app.reaper import Reaping
from app.running import RunningJob, error_record, storage_error
from app.stages import run_of
from app.storage import Storage
from models.base import EngineSettings
from models.chain import FallbackChain
from models.errors import BackendUnavailable, Cancelled, Conflict, StudioError
from pipelines.jobs import job_kinds
from pipelines.tasks import JobHandler, JobRegistry, MakeWay

if TYPE_CHECKING:
    from app.metrics import Metrics

log = logging.getLogger("studio.queue")

HUEY_NAME = "studio"
MAX_PRIORITY = 10
MAX_ATTEMPTS = 3  # runs of one stage (or unstaged job) before a lost worker fails the job


class QueueFull(BackendUnavailable):
    default_code = "QUEUE_FULL"


def create_huey(url: str, *, immediate: bool = False) -> Huey:
    parsed = urlparse(url)
    if parsed.scheme in ("redis", "rediss"):
        return PriorityRedisHuey(HUEY_NAME, url=url, immediate=immediate)
    if parsed.scheme == "memory":
        return MemoryHuey(HUEY_NAME, immediate=immediate)
    path = parsed.path if parsed.netloc == "" else f"/{parsed.netloc}{parsed.path}"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return SqliteHuey(HUEY_NAME, filename=path, immediate=immediate)


class TaskQueue(Reaping):
    """Enqueue jobs, run them on huey workers, cancel them, retry them, count them."""

    def __init__(
        self, huey: Huey, jobs: Jobs, storage: Storage, engine_settings: EngineSettings,
        chains: Callable[[str], FallbackChain[Any]], *, max_queued: int = 50,
        job_timeout: float = 1800.0, admission: Callable[[], None] | None = None,
        lease_seconds: float = DEFAULT_SECONDS, max_attempts: int = MAX_ATTEMPTS,
        kinds: JobRegistry | None = None,
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
        self.metrics: Metrics | None = None  # set by app.metrics.Metrics.bind
        self.max_attempts = max_attempts
        self.leases = LeaseKeeper(jobs, lease_seconds)
        self.heartbeat = heartbeat.install(huey)  # beats while this process consumes
        self.heartbeat.running = self.leases.held  # /health shows what each worker runs
        self.leases.on_change = self.heartbeat.beat_if_consuming
        self._reaper: threading.Thread | None = None
        self._reaper_stop = threading.Event()
        huey.on_startup("studio_reaper")(self.start_reaper)
        self.kinds = kinds if kinds is not None else job_kinds()
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
        kind = self.kinds.get(job.kind)
        handler = kind.handler if kind is not None else None
        if handler is None:
            self.jobs.update(job_id, status="failed", error={
                "code": "QUEUE_UNKNOWN_JOB", "message": f"Unknown job kind {job.kind!r}."})
            return
        token = new_token()
        now = time.time()

        def claim(record: Job) -> bool:
            if record.final or (record.status == "processing" and record.lease is not None
                                and (record.lease_until or 0) > now):
                return False  # finished meanwhile, or a live run holds it (a duplicate)
            record.status, record.worker, record.error = "processing", self.worker_name, None
            record.started_at = record.started_at or now
            record.finished_at, record.updated_at = None, now
            record.attempts += 1
            record.lease, record.lease_until = token, self.leases.deadline()
            return True

        job = self.jobs.store.modify(job_id, claim) or job
        if job.lease != token:
            return
        log.info("job started", extra={"job_id": job_id, "kind": job.kind,
                                       "attempt": job.attempts, "worker": self.worker_name})
        self.leases.hold(job_id, None, token)
        try:
            self._run_held_job(job, handler, token)
        finally:
            self.leases.release(job_id, None, token)

    def _run_held_job(self, job: Job, handler: JobHandler, token: str) -> None:
        job_id = job.id
        ctx = RunningJob(job_id, self.storage, self.engine_settings, self.jobs, self.chains,
                         deadline=time.monotonic() + self.job_timeout, metrics=self.metrics,
                         lease=token, leases=self.leases, waiting=self._waiting)
        started = time.perf_counter()

        def end(**changes: Any) -> bool:
            final = self.jobs.update(job_id, holder=token, lease=None, lease_until=None,
                                     **changes)
            if final.lease is not None and final.lease != token:
                log.warning("result discarded: another worker took the job over",
                            extra={"job_id": job_id})
                return False
            return True

        try:
            result = handler(ctx, job.params)
        except LeaseLost:
            log.warning("job taken over by another worker; this run stops",
                        extra={"job_id": job_id})
            return
        except Cancelled:
            end(status="cancelled", current_step="cancelled")
            log.info("job cancelled", extra={"job_id": job_id})
            return
        except MakeWay as pause:
            self._make_way(job, token, pause)
            return
        except StudioError as exc:
            if end(status="failed", error=error_record(exc)):
                log.warning("job failed", extra={"job_id": job_id, "code": exc.code})
            return
        except Exception as exc:  # a bug must not leave the job 'processing'
            error = storage_error(exc)
            if error is not None:
                end(status="failed", error=error)
                log.warning("job failed", extra={"job_id": job_id, "code": error["code"]})
                return
            log.exception("job crashed", extra={"job_id": job_id})
            end(status="failed", error={
                "code": "QUEUE_JOB_CRASHED", "message": f"Internal error: {type(exc).__name__}",
                "message_ja": f"内部エラー: {type(exc).__name__}"})
            return
        result = dict(result or {})
        result.setdefault("processing_time", round(time.perf_counter() - started, 3))
        if end(status="completed", progress=100.0, current_step="done", result=result,
               steps_remaining=[]):
            log.info("job done", extra={"job_id": job_id,
                                        "duration_ms": round(1000 * (time.perf_counter()
                                                                     - started))})

    def _waiting(self) -> int:
        """Other jobs queued or running (the asking job runs: it is not counted). None
        count when jobs run inline as they are submitted (an immediate queue: a job that
        made way would only run again at once)."""
        if self.huey.immediate:
            return 0
        return self.jobs.count("queued") + max(0, self.jobs.count("processing") - 1)

    def _make_way(self, job: Job, token: str, pause: MakeWay) -> None:
        """Put a job that saved its state back in the queue, behind the waiting work.
        Making way is not a failed attempt: the count of attempts is given back."""
        task = self.run_job.s(job.id, priority=job.priority, delay=pause.delay or None)
        moved = False

        def back(record: Job) -> bool:
            nonlocal moved
            moved = record.lease == token and not record.final
            if moved:
                record.status, record.task_id, record.current_step = "queued", task.id, pause.step
                record.lease, record.lease_until, record.updated_at = None, None, time.time()
                record.attempts = max(0, record.attempts - 1)
            return moved

        self.jobs.store.modify(job.id, back)
        if moved:
            self.huey.enqueue(task)
            log.info("job made way for waiting work", extra={"job_id": job.id})

    # -- the app side ----------------------------------------------------------------

    def submit(
        self, kind: str, params: dict[str, Any], *, owner: str | None = None,
        priority: int = 0, expires: float | None = None,
    ) -> Job:
        job_kind = self.kinds[kind]  # KeyError for a kind this queue does not run
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
            if job_kind.staged:
                self.jobs.create(kind, params, list(job_kind.steps), owner=owner,
                                 priority=priority, job_id=job_id)
            else:
                task = self.run_job.s(job_id, priority=priority, expires=expires)
                job = self.jobs.create(kind, params, list(job_kind.steps),
                                       owner=owner, priority=priority, job_id=job_id,
                                       task_id=task.id)
        if job_kind.staged:
            job = self.jobs.update(job_id, attempts=1, run=1)
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
        if self.is_staged(job.kind):
            records = self.jobs.store.load_stages(job_id)
            for name, record in records.items():
                if record.get("status") not in ("done", "skipped"):
                    record.update(status="pending", progress=0.0, error=None, lease=None,
                                  lease_until=None)
                    self.jobs.store.save_stage(job_id, name, record)
            job = self.jobs.update(job_id, reopen=True, status="queued", error=None,
                                   cancel_requested=False, finished_at=None, worker=None,
                                   attempts=job.attempts + 1, run=run_of(job) + 1,
                                   current_step="queued")
            self._enqueue_ready(job, self.jobs.store.load_stages(job_id))
            return self.jobs.get(job_id)
        task = self.run_job.s(job_id, priority=job.priority)
        job = self.jobs.update(job_id, reopen=True, status="queued", error=None, progress=0.0,
                               cancel_requested=False, finished_at=None, task_id=task.id,
                               lease=None, lease_until=None,
                               steps_completed=[], current_step="queued",
                               steps_remaining=self.kinds.steps(job.kind))
        self.huey.enqueue(task)
        return job

    # -- staged jobs -----------------------------------------------------------------

    def depth(self) -> int:
        try:
            return int(self.huey.pending_count())
        except Exception:  # a broken queue reads as unknown, not a crash
            return -1

    def health(self) -> tuple[bool, str]:
        try:
            depth = self.huey.pending_count()
        except Exception as exc:
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
        self._reaper_stop.set()
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None
