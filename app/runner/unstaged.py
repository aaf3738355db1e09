"""Unstaged jobs: one handler run as one huey task (``studio.run_job``).

:class:`UnstagedRunner` is a part the task queue (``app.runner.queue``) holds. It claims the
job's lease (``app.runner.leases``), runs the kind's handler in a :class:`RunningJob`, writes
the end only while it still holds the lease, and puts a job that makes way for waiting work
(``pipelines.tasks.MakeWay``) back in the queue. How a job ended is told as an event
(``app.runner.events.JobFinished``) from huey's own task signals, so a task that crashed
outside the handler is counted too.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from huey import signals
from huey.api import Task, TaskWrapper

from app.runner.events import JobFinished
from app.runner.jobs import Job
from app.runner.leases import LeaseLost, new_token
from app.runner.running import RunningJob, WorkerParts, error_record, storage_error
from models.errors import Cancelled, StudioError
from pipelines.tasks import JobHandler, MakeWay

log = logging.getLogger("studio.queue")

JOB_TIMEOUT = 1800.0  # seconds one unstaged job may run


class UnstagedRunner:
    """Runs unstaged jobs on huey workers; tells how each run ended."""

    def __init__(self, parts: WorkerParts, *, job_timeout: float = JOB_TIMEOUT) -> None:
        self.parts = parts
        self.job_timeout = job_timeout
        self.run_job: TaskWrapper = parts.huey.task(name="studio.run_job")(self.run)
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()
        parts.huey.signal(signals.SIGNAL_EXECUTING, signals.SIGNAL_COMPLETE,
                          signals.SIGNAL_ERROR)(self._on_task_signal)

    def _on_task_signal(self, signal: str, task: Task, *args: Any) -> None:
        """Time each run of a job task and say how the job ended; a run that re-queued it
        (a lost lease, making way) says nothing: it is told when the job really ends."""
        if task.name != self.run_job.name or not task.args:
            return
        if signal == signals.SIGNAL_EXECUTING:
            with self._lock:
                self._started[task.id] = time.perf_counter()
            return
        with self._lock:
            started = self._started.pop(task.id, None)
        if not self.parts.events.listening(JobFinished):
            return
        job = self.parts.jobs.store.load(task.args[0])
        if job is None:
            return
        if job.final:
            status = job.status
        elif signal == signals.SIGNAL_ERROR:
            status = "failed"  # the task itself crashed and left the record behind
        else:
            return
        seconds = None if started is None else time.perf_counter() - started
        self.parts.events.send(JobFinished(job.kind, status, seconds))

    def run(self, job_id: str) -> None:
        """The ``studio.run_job`` task: claim the job's lease, run its handler, write the end."""
        job = self.parts.jobs.store.load(job_id)
        if job is None:
            log.warning("job vanished before it ran", extra={"job_id": job_id})
            return
        if job.status == "cancelled" or self.parts.jobs.cancel_requested(job_id):
            self.parts.jobs.update(job_id, status="cancelled", current_step="cancelled")
            return
        kind = self.parts.kinds.get(job.kind)
        handler = kind.handler if kind is not None else None
        if handler is None:
            self.parts.jobs.update(job_id, status="failed", error={
                "code": "QUEUE_UNKNOWN_JOB", "message": f"Unknown job kind {job.kind!r}."})
            return
        token = new_token()
        now = time.time()

        def claim(record: Job) -> bool:
            if record.final or (record.status == "processing" and record.lease is not None
                                and (record.lease_until or 0) > now):
                return False  # finished meanwhile, or a live run holds it (a duplicate)
            record.status, record.worker, record.error = "processing", self.parts.worker_name, None
            record.started_at = record.started_at or now
            record.finished_at, record.updated_at = None, now
            record.attempts += 1
            record.lease, record.lease_until = token, self.parts.leases.deadline()
            return True

        job = self.parts.jobs.store.modify(job_id, claim) or job
        if job.lease != token:
            return
        log.info("job started", extra={"job_id": job_id, "kind": job.kind,
                                       "attempt": job.attempts, "worker": self.parts.worker_name})
        self.parts.leases.hold(job_id, None, token)
        try:
            self._run_held_job(job, handler, token)
        finally:
            self.parts.leases.release(job_id, None, token)

    def _run_held_job(self, job: Job, handler: JobHandler, token: str) -> None:
        job_id = job.id
        ctx = RunningJob(job_id, self.parts.storage, self.parts.engine_settings, self.parts.jobs, self.parts.chains,
                         deadline=time.monotonic() + self.job_timeout, events=self.parts.events,
                         lease=token, leases=self.parts.leases, waiting=self._waiting)
        started = time.perf_counter()

        def end(**changes: Any) -> bool:
            final = self.parts.jobs.update(job_id, holder=token, lease=None, lease_until=None,
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
        if self.parts.huey.immediate:
            return 0
        return self.parts.jobs.count("queued") + max(0, self.parts.jobs.count("processing") - 1)

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

        self.parts.jobs.store.modify(job.id, back)
        if moved:
            self.parts.huey.enqueue(task)
            log.info("job made way for waiting work", extra={"job_id": job.id})
