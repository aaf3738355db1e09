"""The task queue: the one door to the job runner (submit, cancel, retry, count, consume).

:class:`TaskQueue` holds the runner's parts and adds none of their work to its own: unstaged
jobs run in its :class:`UnstagedRunner` (``app.runner.unstaged``), staged jobs in its
:class:`StageScheduler` (``app.runner.stages``), and what dead workers leave is taken back
by its :class:`Reaper` (``app.runner.reaper``). ``app.services`` builds the parts and wires
them; the kinds come from ``pipelines.jobs``. What happens goes out as events
(``app.runner.events``) to whoever subscribed to :attr:`TaskQueue.events`.

``STUDIO_QUEUE_URL`` picks the storage: ``sqlite:///path`` (default, a file in the data
dir), ``redis://host:port/db`` (PriorityRedisHuey, so job priorities are honoured, and any
number of ``huey_consumer app.worker.huey`` processes), or ``memory://`` (tests). The app
starts in-process consumer threads (``STUDIO_WORKERS``); with 0 it only enqueues.

Each run holds a lease on its stage (or unstaged job) and writes only while it holds it
(``app.runner.leases``).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from huey import MemoryHuey, PriorityRedisHuey, SqliteHuey, signals
from huey.api import Huey, Task, TaskWrapper

from app.runner.events import Events
from app.runner.heartbeat import Heartbeat
from app.runner.jobs import Job, Jobs
from app.runner.reaper import Reaper
from app.runner.stages import StageScheduler, run_of
from app.runner.unstaged import UnstagedRunner
from models.errors import BackendUnavailable, Conflict
from pipelines.tasks import JobRegistry

HUEY_NAME = "studio"
MAX_PRIORITY = 10
IDLE_POLL_MAX_S = 0.2
"""The longest an idle worker sleeps between looks at a polled queue (SQLite, memory).
Huey's default backs off to 10 s, so a job submitted after a minute of quiet waited 5 s on
average before it started: a profile made in 8 s was ready after 8-13 s
(``bench/queue_pickup.py``). At 0.5 s a profile still waited 0.31-0.44 s for its worker
(measured through REST), a twentieth of its time; a look is one small SQLite read, five a
second while idle. Redis blocks on its list and never sleeps."""


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


class TaskQueue:
    """Enqueue jobs, run them on huey workers, cancel them, retry them, count them."""

    def __init__(
        self, huey: Huey, jobs: Jobs, *, kinds: JobRegistry, events: Events,
        heartbeat: Heartbeat, unstaged: UnstagedRunner, scheduler: StageScheduler,
        reaper: Reaper, max_queued: int = 50, admission: Callable[[], None] | None = None,
    ) -> None:
        self.huey = huey
        self.jobs = jobs
        self.kinds = kinds
        self.events = events  # subscribe here to hear what the runner does
        self.heartbeat = heartbeat  # beats while this process consumes
        self.unstaged = unstaged
        self.scheduler = scheduler
        self.reaper = reaper
        self.max_queued = max_queued
        self.admission = admission  # raises to refuse new jobs (e.g. disk nearly full)
        self.worker_name = heartbeat.worker
        self.run_job: TaskWrapper = unstaged.run_job
        self.run_stage: TaskWrapper = scheduler.run_stage
        self._consumer: Any = None
        self._admit = threading.Lock()  # count-then-create is one step for this process
        huey.signal(signals.SIGNAL_EXPIRED)(self._on_expired)

    @property
    def consuming(self) -> bool:
        """Whether this process runs an in-process consumer (``start_consumer``)."""
        return self._consumer is not None

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
            self.scheduler.enqueue_ready(job, {}, expires=expires)
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
        also takes a job still marked 'processing' whose worker died (``Reaper.recover``)."""
        job = self.jobs.get(job_id)
        allowed = ("failed", "cancelled", "processing") if orphaned else ("failed", "cancelled")
        if job.status not in allowed:
            raise Conflict(f"Only failed or cancelled jobs can be retried; this one is "
                           f"{job.status}.", code="QUEUE_JOB_NOT_RETRYABLE",
                           message_ja=f"再試行できるのは失敗またはキャンセルしたジョブだけです（現在: {job.status}）。")
        self.jobs.store.clear_flag(job_id, "cancel")
        if self.scheduler.is_staged(job.kind):
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
            self.scheduler.enqueue_ready(job, self.jobs.store.load_stages(job_id))
            return self.jobs.get(job_id)
        task = self.run_job.s(job_id, priority=job.priority)
        job = self.jobs.update(job_id, reopen=True, status="queued", error=None, progress=0.0,
                               cancel_requested=False, finished_at=None, task_id=task.id,
                               lease=None, lease_until=None,
                               steps_completed=[], current_step="queued",
                               steps_remaining=self.kinds.steps(job.kind))
        self.huey.enqueue(task)
        return job

    def stages(self, job_id: str) -> dict[str, dict[str, Any]]:
        """The stage records of a staged job (empty for an unstaged one)."""
        return self.jobs.store.load_stages(job_id)

    def reap(self, dead: Callable[[str], bool] | None = None) -> list[str]:
        """Take back what dead workers left, now (see ``Reaper.reap``)."""
        return self.reaper.reap(dead)

    def recover(self) -> list[str]:
        """At a worker's start: take back the work of this host's dead processes."""
        return self.reaper.recover()

    # -- counts ----------------------------------------------------------------------

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
                                             periodic=True, check_worker_health=True,
                                             max_delay=IDLE_POLL_MAX_S)
        if not install_signals or threading.current_thread() is not threading.main_thread():
            consumer._set_signal_handlers = lambda: None  # only the main thread may
        consumer.start()
        self._consumer = consumer

    def stop_consumer(self) -> None:
        self.reaper.stop()
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None
