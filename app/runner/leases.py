"""Leases: the run that works on a stage (or on an unstaged job) holds a lease on it.

Why: a worker killed with SIGKILL, or a machine that goes away, says nothing. Each running
stage record names its worker, a random lease token and a deadline (``lease_until``); the
process holding it pushes the deadline forward every few seconds from a keeper thread. Once
the deadline passes, any live worker may take the stage back (``app.runner.reaper``) —
whoever started the job, on whatever machine. Every write the running stage makes (progress,
result, failure) is a compare-and-set on its token, so a run that lost its lease (suspended,
cut off, or just slow to notice) cannot overwrite what its successor did; it finds out at its
next progress report and stops.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from app.runner.jobs import Job, Jobs
from models.errors import StudioError

log = logging.getLogger("studio.leases")

DEFAULT_SECONDS = 20.0  # a dead worker's stage is taken back within ~this plus one reap
RUN_ENDS = ("done", "failed", "cancelled", "retrying")
"""What a stage's run writes at its end (clearing its lease); the reaper's take-back writes
"pending"."""


class LeaseLost(StudioError):
    """This run no longer holds its lease: another worker took the stage over."""

    kind = "conflict"
    default_code = "QUEUE_LEASE_LOST"


def new_token() -> str:
    return uuid.uuid4().hex


class LeaseKeeper:
    """Renews the leases this process holds, and remembers the ones it lost."""

    def __init__(self, jobs: Jobs, seconds: float = DEFAULT_SECONDS, *,
                 on_change: Callable[[], None] | None = None) -> None:
        self.jobs = jobs
        self.seconds = float(seconds)
        self._held: dict[tuple[str, str | None], str] = {}
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_change = on_change  # called after hold/release (the heartbeat says it)

    @property
    def renew_every(self) -> float:
        return max(self.seconds / 4.0, 0.25)

    def deadline(self) -> float:
        return time.time() + self.seconds

    def hold(self, job_id: str, stage: str | None, token: str) -> None:
        with self._lock:
            self._held[(job_id, stage)] = token
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="studio-leases",
                                                daemon=True)
                self._thread.start()
        self._changed()

    def release(self, job_id: str, stage: str | None, token: str) -> None:
        with self._lock:
            if self._held.get((job_id, stage)) == token:
                del self._held[(job_id, stage)]
            self._lost.discard(token)
        self._changed()

    def lost(self, token: str) -> bool:
        return token in self._lost

    def held(self) -> list[dict[str, Any]]:
        """What this process is working on, for its heartbeat record and ``/health``."""
        with self._lock:
            return [{"job_id": job_id, "stage": stage} for job_id, stage in self._held]

    def _changed(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception as exc:  # reporting must not stop the work
                log.warning("heartbeat not written: %s", exc)

    def renew_all(self) -> None:
        with self._lock:
            held = list(self._held.items())
        for (job_id, stage), token in held:
            try:
                kept = self._renew(job_id, stage, token)
            except Exception as exc:  # a store hiccup: try again next round
                log.warning("lease not renewed: %s", exc,
                            extra={"job_id": job_id, "stage": stage})
                continue
            if kept is None:
                continue  # the run wrote its end and gives the lease back now
            if not kept:
                with self._lock:
                    self._lost.add(token)
                log.warning("lease lost to another worker",
                            extra={"job_id": job_id, "stage": stage})

    def _renew(self, job_id: str, stage: str | None, token: str) -> bool | None:
        """True: renewed; False: lost (another run holds it, or the reaper took it back);
        None: over (the run has written its end, which clears the lease, and has not yet
        released it here: no loss to report)."""
        until = self.deadline()
        if stage is None:
            def push_job(job: Job) -> bool:
                if job.lease != token or job.final:
                    return False
                job.lease_until = until
                return True

            job = self.jobs.store.modify(job_id, push_job)
            if job is not None and job.final and job.lease is None:
                return None
            return job is not None and job.lease == token and not job.final

        def push(record: dict[str, Any]) -> bool:
            if record.get("lease") != token:
                return False
            record["lease_until"] = until
            return True

        record = self.jobs.store.modify_stage(job_id, stage, push)
        if record.get("lease") is None and record.get("status") in RUN_ENDS:
            return None
        return record.get("lease") == token

    def _run(self) -> None:
        while True:
            self._wake.wait(self.renew_every)
            with self._lock:
                if not self._held:
                    self._thread = None
                    return
            self.renew_all()
