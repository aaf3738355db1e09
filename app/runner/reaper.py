"""Taking back the work of dead workers: the reaper side of leases
(``app.runner.leases``).

Every consuming process runs one reaper thread. It looks at every job that is queued or
processing — whichever worker started it, on whatever machine — and takes back what a dead
worker left: a running stage whose lease expired (re-queued, its attempt counted, or the job
failed with ``QUEUE_WORKER_LOST`` after too many), a job with nothing running after a death
between two stages, and a task a worker took off the queue but never started. A restarted
worker takes back the work of dead processes on its own host at once (``recover``). Both
also remove the scratch folders that renders killed on this machine left in the temp folder.

:class:`Reaper` is a part the task queue (``app.runner.queue``) holds. It re-queues through
the tasks of the parts that run jobs (``app.runner.unstaged``, ``app.runner.stages``) and
re-drives staged jobs through the stage scheduler it is given.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from huey.api import Huey

from app.runner.heartbeat import Heartbeat
from app.runner.jobs import Job, Jobs
from app.runner.leases import LeaseKeeper
from app.runner.stages import StageScheduler, run_of, stage_priority
from app.runner.unstaged import UnstagedRunner
from pipelines.scratch import sweep_scratch

log = logging.getLogger("studio.queue")

MAX_ATTEMPTS = 3  # runs of one stage (or unstaged job) before a lost worker fails the job


class Reaper:
    """Takes back the stages and jobs of dead workers, from a thread in each consuming
    process (started by huey's worker start-up hook) or when asked (:meth:`reap`)."""

    def __init__(self, huey: Huey, jobs: Jobs, *, leases: LeaseKeeper, heartbeat: Heartbeat,
                 scheduler: StageScheduler, unstaged: UnstagedRunner,
                 consuming: Callable[[], bool], max_attempts: int = MAX_ATTEMPTS) -> None:
        self.huey = huey
        self.jobs = jobs
        self.leases = leases
        self.heartbeat = heartbeat
        self.scheduler = scheduler
        self.unstaged = unstaged
        self.max_attempts = max_attempts
        self.consuming = consuming  # an in-process consumer runs here (work can be handed)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        huey.on_startup("studio_reaper")(self.start)

    def start(self) -> None:
        """Every consuming process looks for expired leases (huey's worker start-up hook
        calls this in each worker thread; one reaper thread per process)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._reap_loop, name="studio-reaper",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _reap_loop(self) -> None:
        every = max(self.leases.seconds / 4.0, 0.25)
        while not self._stop.wait(every):
            if self.heartbeat.threads_alive() == 0 and not self.consuming():
                continue  # no consumer threads here (they stopped): nothing to hand work to
            try:
                self.reap()
            except Exception as exc:  # the store may be briefly unreachable
                log.warning("reap failed: %s", exc)
            sweep_render_folders()

    def reap(self, dead: Callable[[str], bool] | None = None) -> list[str]:
        """Take back every stage (and unstaged job) whose lease expired — or, with ``dead``,
        whose worker is known dead — from any worker of any job; re-queue it, counting the
        attempt, or fail the job after :attr:`max_attempts`. Also re-drives a job whose
        worker died between finishing a stage and queueing the next, and re-queues a task a
        worker took off the queue but died before starting. Returns what it took back."""
        now = time.time()
        stale = now - self.leases.seconds
        taken: list[str] = []
        waiting: tuple[set[str], set[tuple[str, str]]] | None = None

        def in_queue(task_id: str | None, job_id: str, stage: str | None) -> bool:
            nonlocal waiting
            if waiting is None:
                waiting = self._waiting_tasks()
            return (task_id in waiting[0]) if stage is None else (job_id, stage) in waiting[1]

        unfinished = [j for j in self.jobs.store.unfinished()
                      if j.status in ("processing", "queued")]
        for job in unfinished:  # one indexed read of the store per pass, not the history
            if not self.scheduler.is_staged(job.kind):
                if job.status == "queued":
                    if job.updated_at < stale and not in_queue(job.task_id, job.id, None):
                        self._requeue_job(job)
                elif job.lease and ((job.lease_until or 0) < now
                                    or (dead is not None and dead(job.worker or ""))):
                    if self._reclaim_job(job, now):
                        taken.append(job.id)
                continue
            busy = False
            for name, record in self.jobs.store.load_stages(job.id).items():
                status = record.get("status")
                if status == "queued" and float(record.get("queued_at") or 0) < stale \
                        and not in_queue(None, job.id, name):
                    self._requeue_stage(job, name)
                if status in ("queued", "retrying"):
                    busy = True
                if status != "running":
                    continue
                busy = True
                until = float(record.get("lease_until")
                              or float(record.get("started_at") or 0) + self.leases.seconds)
                if until < now or (dead is not None and dead(record.get("worker") or "")):
                    if self._reclaim_stage(job, name, record.get("lease"), now):
                        taken.append(f"{job.id}:{name}")
            if not busy and job.status == "processing":
                # nothing runs or waits: a worker died between two stages. Left alone for a
                # lease's time first, so a live worker's own hand-over is not raced.
                fresh = self.jobs.store.load(job.id)
                if fresh is not None and fresh.status == "processing" \
                        and fresh.updated_at < stale:
                    log.warning("job with nothing running driven on", extra={"job_id": job.id})
                    self.scheduler.enqueue_ready(fresh, self.jobs.store.load_stages(job.id),
                                                 force=True)
        return taken

    def _waiting_tasks(self) -> tuple[set[str], set[tuple[str, str]]]:
        """The studio tasks in the queue or its schedule: task ids, and (job, stage) pairs."""
        ids: set[str] = set()
        stages: set[tuple[str, str]] = set()
        for task in [*self.huey.pending(), *self.huey.scheduled()]:
            ids.add(task.id)
            if task.name == self.scheduler.run_stage.name and len(task.args) >= 2:
                stages.add((task.args[0], task.args[1]))
        return ids, stages

    def _requeue_stage(self, job: Job, stage_name: str) -> None:
        """A 'queued' stage with no task anywhere: a worker took it and died before it
        started. A duplicate (a live worker about to start it) is harmless: it is refused."""
        now = time.time()

        def again(record: dict[str, Any]) -> bool:
            if record.get("status") != "queued":
                return False
            record["queued_at"] = now
            return True

        if self.jobs.store.modify_stage(job.id, stage_name, again).get("queued_at") != now:
            return
        index = self.scheduler.stage_index(job.kind, stage_name)
        self.huey.enqueue(self.scheduler.run_stage.s(job.id, stage_name, run_of(job),
                                           priority=stage_priority(job, index)))
        log.warning("stage task lost with its worker re-queued",
                    extra={"job_id": job.id, "stage": stage_name})

    def _requeue_job(self, job: Job) -> None:
        task = self.unstaged.run_job.s(job.id, priority=job.priority)
        moved = False

        def again(record: Job) -> bool:
            nonlocal moved
            moved = False
            if record.status != "queued" or record.task_id != job.task_id:
                return False
            record.task_id, record.updated_at, moved = task.id, time.time(), True
            return True

        self.jobs.store.modify(job.id, again)
        if moved:
            self.huey.enqueue(task)
            log.warning("job task lost with its worker re-queued", extra={"job_id": job.id})

    def _reclaim_stage(self, job: Job, stage_name: str, token: str | None, now: float) -> bool:
        outcome = ""
        lost_worker = ""

        def take(record: dict[str, Any]) -> bool:
            nonlocal outcome, lost_worker
            outcome = ""  # Redis calls this again after a conflicting write: start afresh
            if record.get("status") != "running" or record.get("lease") != token:
                return False  # finished, or another reaper was first
            lost_worker = str(record.get("worker") or "?")
            record["lost_workers"] = [*record.get("lost_workers", []), lost_worker]
            record.update(lease=None, lease_until=None, progress=0.0)
            if int(record.get("attempts", 1)) >= self.max_attempts:
                record.update(status="failed", finished_at=now,
                              error=_worker_lost(stage_name, record))
                outcome = "failed"
            else:
                record.update(status="queued", queued_at=now)
                outcome = "queued"
            return True

        record = self.jobs.store.modify_stage(job.id, stage_name, take)
        if outcome == "failed":
            self.scheduler.fail_job(job.id, stage_name, record["error"])
        elif outcome == "queued":
            self.jobs.store.modify(job.id, _count_attempt)  # atomic: two stages may be lost
            index = self.scheduler.stage_index(job.kind, stage_name)
            self.huey.enqueue(self.scheduler.run_stage.s(job.id, stage_name, run_of(job),
                                               priority=stage_priority(job, index)))
            log.warning("stage of a lost worker re-queued",
                        extra={"job_id": job.id, "stage": stage_name,
                               "lost_worker": lost_worker, "attempt": record.get("attempts")})
        return bool(outcome)

    def _reclaim_job(self, job: Job, now: float) -> bool:
        task = self.unstaged.run_job.s(job.id, priority=job.priority)
        outcome = ""

        def take(record: Job) -> bool:
            nonlocal outcome
            outcome = ""  # Redis calls this again after a conflicting write: start afresh
            if record.status != "processing" or record.lease != job.lease:
                return False
            record.lease, record.lease_until, record.updated_at = None, None, now
            if record.attempts >= self.max_attempts:
                record.status, record.finished_at = "failed", now
                record.current_step = "worker lost"
                record.error = _worker_lost(None, {"attempts": record.attempts,
                                                  "worker": record.worker})
                outcome = "failed"
            else:
                record.status, record.task_id, record.current_step = "queued", task.id, "queued"
                outcome = "queued"
            return True

        self.jobs.store.modify(job.id, take)
        if outcome == "queued":
            self.huey.enqueue(task)
            log.warning("job of a lost worker re-queued",
                        extra={"job_id": job.id, "lost_worker": job.worker})
        elif outcome == "failed":
            log.warning("job failed: worker lost", extra={"job_id": job.id})
        return bool(outcome)

    def recover(self) -> list[str]:
        """At a worker's start: take back at once the work of processes on this host that
        are gone (a restart after a crash need not wait for their leases to expire), and
        anything whose lease already expired anywhere."""
        host = socket.gethostname()
        sweep_render_folders()
        return self.reap(dead=lambda worker: _worker_dead(worker, host))


def sweep_render_folders() -> list[str]:
    """Remove the scratch folders of renders killed on this machine (any process's:
    ``pipelines.scratch``); what it removed."""
    try:
        removed = sweep_scratch()
    except Exception as exc:  # a clean-up never stops the reaper
        log.warning("scratch sweep failed: %s", exc)
        return []
    for folder in removed:
        log.info("scratch folder of a killed render removed", extra={"folder": str(folder)})
    return [str(folder) for folder in removed]


def _count_attempt(job: Job) -> bool:
    if job.final:
        return False
    job.attempts += 1
    job.updated_at = time.time()
    return True


def _worker_lost(stage: str | None, record: dict[str, Any]) -> dict[str, Any]:
    attempts = int(record.get("attempts", 1))
    where = f"stage {stage}" if stage else "this job"
    where_ja = f"ステージ {stage}" if stage else "このジョブ"
    return {"code": "QUEUE_WORKER_LOST",
            "message": f"The worker running {where} stopped answering, {attempts} times "
                       f"(last: {record.get('worker') or 'unknown'}); it was not tried again.",
            "message_ja": f"{where_ja} を実行していたワーカーが {attempts} 回応答しなくなりました。",
            "details": {"attempts": attempts, "worker": record.get("worker")}}


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
