"""The staged-job scheduler: runs a job made of stages (``pipelines.tasks.Stage``).

Each stage is its own huey task with its own lease, retries and time limit; a stage is
queued once every stage it waits for is done or skipped (once per run of the job, by an
atomic flag), and the job's progress is the weighted roll-up of its stages' records. When
every stage is settled, the kind's ``finish`` builds the job's result.

:class:`StageScheduler` is a part that the task queue (``app.runner.queue``) holds; the reaper
(``app.runner.reaper``) re-drives staged jobs through it. A running stage reports progress
through the callback it is given (:meth:`StageScheduler.stage_progress`, bound to its run).
Finished jobs and stages go out as events (``app.runner.events``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from huey.api import TaskWrapper

from app.runner.events import JobFinished, StageDone
from app.runner.jobs import Job
from app.runner.leases import LeaseLost, new_token
from app.runner.running import RunningStage, StageReport, WorkerParts, error_record, storage_error
from models.errors import Cancelled, StudioError, TransientBackendError
from pipelines.tasks import Stage

log = logging.getLogger("studio.queue")


def stage_priority(job: Job, index: int) -> int:
    """A stage task's queue priority: the job's own (0-10) first, then later stages before
    earlier ones, so a worker finishes messages already under way before starting the first
    stages of newer ones (first come, first finished; not all finished together at the end)."""
    return job.priority * 100 + index


def run_of(job: Job) -> int:
    """Which run of a staged job is current (records from before ``run`` existed: attempts)."""
    return job.run or job.attempts


class StageScheduler:
    """Runs staged jobs: queues their stages as huey tasks (``studio.run_stage``), runs one
    stage under its lease, rolls progress up, fails or finishes the job."""

    def __init__(self, parts: WorkerParts) -> None:
        self.parts = parts
        self.run_stage: TaskWrapper = parts.huey.task(name="studio.run_stage")(self._run_stage)

    def is_staged(self, kind: str) -> bool:
        """A kind this queue no longer knows (a job from before an upgrade) runs unstaged."""
        job_kind = self.parts.kinds.get(kind)
        return job_kind is not None and job_kind.staged

    def _stages(self, kind: str) -> tuple[Stage, ...]:
        return self.parts.kinds[kind].stages

    def stage_index(self, kind: str, stage: str) -> int:
        """The stage's place in its kind (its queue priority comes from it)."""
        return [st.name for st in self._stages(kind)].index(stage)

    def enqueue_ready(self, job: Job, records: dict[str, dict[str, Any]],
                       expires: float | None = None, force: bool = False) -> None:
        """Queue every stage whose waits are met, once per run of the job (atomic claim).
        ``force`` (the reaper, for a job nobody works on) queues again what a worker killed
        between claiming and queueing left behind; a duplicate task finds the stage held
        or done and returns."""
        settled = {n for n, r in records.items() if r.get("status") in ("done", "skipped")}
        changed = True
        while changed:  # skipped stages can make later ones ready at once
            changed = False
            for stage in self._stages(job.kind):
                if stage.name in settled or not set(stage.after) <= settled:
                    continue
                if stage.when is not None and not stage.when(job.params):
                    self.parts.jobs.store.save_stage(job.id, stage.name,
                                               {"status": "skipped", "progress": 1.0})
                    settled.add(stage.name)
                    changed = True
        stage_index = {st.name: i for i, st in enumerate(self._stages(job.kind))}
        for stage in self._stages(job.kind):
            if stage.name in settled or not set(stage.after) <= settled:
                continue
            if records.get(stage.name, {}).get("status") in ("running", "queued", "retrying"):
                continue
            if self.parts.jobs.store.set_flag(job.id, f"queued:{run_of(job)}:{stage.name}") or force:
                # 'queued' in the record: the reaper knows this stage waits in the queue
                self.parts.jobs.store.modify_stage(job.id, stage.name, _mark_queued)
                self.parts.huey.enqueue(self.run_stage.s(job.id, stage.name, run_of(job),
                                                   priority=stage_priority(job, stage_index[
                                                       stage.name]), expires=expires))
        if settled >= {st.name for st in self._stages(job.kind)}:
            self._finish(job, force=force)

    def _finish(self, job: Job, force: bool = False) -> None:
        if not self.parts.jobs.store.set_flag(job.id, f"finished:{run_of(job)}") and not force:
            return
        records = self.parts.jobs.store.load_stages(job.id)
        outputs = {n: r.get("output") or {} for n, r in records.items()
                   if r.get("status") == "done"}
        finish = self.parts.kinds[job.kind].finish
        assert finish is not None  # a staged kind always has one (JobKind checks)
        result = finish(job.params, outputs)
        result["stages"] = [
            {"stage": st.name, "status": records.get(st.name, {}).get("status"),
             "duration": records.get(st.name, {}).get("duration"),
             **{k: v for k, v in (outputs.get(st.name) or {}).items()
                if k in ("backend", "fallback_used", "fallback_method", "engines")}}
            for st in self._stages(job.kind)
        ]
        started = job.started_at or job.created_at
        result.setdefault("processing_time", round(time.time() - started, 3))
        self.parts.events.send(JobFinished(job.kind, "completed", time.time() - started))
        self.parts.jobs.update(job.id, status="completed", progress=100.0, current_step="done",
                         result=result, steps_remaining=[],
                         steps_completed=[st.name for st in self._stages(job.kind)])

    def _sync_progress(self, job_id: str, kind: str, records: dict[str, dict[str, Any]],
                       step: str | None = None) -> None:
        """Roll the stage records up into the job's progress.

        Parallel stages (image and voice) report at once; each rollup re-reads the stage
        records inside the job's atomic update, so a report computed from older records can
        never land after a newer one and move the bar backwards. ``records`` are the
        caller's view, used only for stages the store does not hold yet.
        """
        stages = self._stages(kind)
        total = sum(st.weight for st in stages) or 1.0

        def apply(job: Job) -> bool:
            if job.final:
                return False
            fresh = {**records, **self.parts.jobs.store.load_stages(job_id)}
            done = 0.0
            completed, remaining, running = [], [], []
            for st in stages:
                record = fresh.get(st.name, {})
                status = record.get("status")
                if status in ("done", "skipped"):
                    done += st.weight
                    completed.append(st.name)
                else:
                    remaining.append(st.name)
                    if status == "running":
                        done += st.weight * float(record.get("progress", 0.0))
                        running.append(st.name)
            job.progress = round(min(99.0, 100.0 * done / total), 1)
            job.steps_completed = completed
            job.steps_remaining = remaining
            job.current_step = step or (",".join(running) or None)
            job.updated_at = time.time()
            return True

        self.parts.jobs.store.modify(job_id, apply)

    def reporter(self, job_id: str, stage: str, token: str) -> StageReport:
        """The progress callback of one run of a stage (what its context is given)."""
        def report(fraction: float, step: str) -> None:
            self.stage_progress(job_id, stage, fraction, step, token)

        return report

    def stage_progress(self, job_id: str, stage: str, fraction: float, step: str,
                       token: str | None) -> None:
        """Write a stage's progress (while ``token`` holds its lease) and roll it up."""
        def report(record: dict[str, Any]) -> bool:
            if token is not None and record.get("lease") != token:
                return False
            record["progress"] = min(max(fraction, 0.0), 1.0)
            record["step"] = step
            record["lease_until"] = self.parts.leases.deadline()  # progress renews it, too
            return True

        record = self.parts.jobs.store.modify_stage(job_id, stage, report)
        if token is not None and record.get("lease") != token:
            raise LeaseLost(f"Another worker took stage {stage} over.")
        job = self.parts.jobs.get(job_id)
        records = self.parts.jobs.store.load_stages(job_id)
        records[stage] = record
        self._sync_progress(job_id, job.kind, records, step=f"{stage}: {step}" if step and
                            step != stage else stage)

    def _write_stage(self, job_id: str, stage: str, token: str, **changes: Any) -> bool:
        """Write the end of a run into its stage record, only while it holds the lease."""
        def write(record: dict[str, Any]) -> bool:
            if record.get("lease") != token:
                return False
            record.update(changes)
            record.update(lease=None, lease_until=None)
            return True

        written = False

        def guarded(record: dict[str, Any]) -> bool:
            nonlocal written
            written = write(record)
            return written

        self.parts.jobs.store.modify_stage(job_id, stage, guarded)
        if not written:
            log.warning("stage result discarded: another worker took the stage over",
                        extra={"job_id": job_id, "stage": stage})
        return written

    def _run_stage(self, job_id: str, stage_name: str, run: int) -> None:
        job = self.parts.jobs.store.load(job_id)
        if job is None or job.final or run_of(job) != run:
            return  # gone, finished, failed by a sibling, or superseded by a retry
        if self.parts.jobs.cancel_requested(job_id):
            self.parts.jobs.update(job_id, status="cancelled", current_step="cancelled")
            return
        stage = self.parts.kinds[job.kind].stage(stage_name)
        token = new_token()
        now = time.time()
        claimed = False

        def claim(record: dict[str, Any]) -> bool:
            nonlocal claimed
            claimed = False  # a store may call this again after a conflicting write
            status = record.get("status")
            if status in ("done", "skipped"):
                return False
            if status == "running" and record.get("lease") and \
                    float(record.get("lease_until") or 0) > now:
                return False  # a live run holds it: this task is a duplicate
            record.update(status="running", progress=0.0,
                          attempts=int(record.get("attempts", 0)) + 1, started_at=now,
                          worker=self.parts.worker_name, error=None, lease=token,
                          lease_until=self.parts.leases.deadline())
            claimed = True
            return True

        record = self.parts.jobs.store.modify_stage(job_id, stage_name, claim)
        if not claimed:
            if record.get("status") in ("done", "skipped"):
                self.enqueue_ready(job, self.parts.jobs.store.load_stages(job_id))
            return
        log.info("stage started", extra={"job_id": job_id, "stage": stage_name,
                                         "attempt": record["attempts"],
                                         "worker": self.parts.worker_name})
        self.parts.leases.hold(job_id, stage_name, token)
        try:
            self._run_held_stage(job, stage, record, token)
        finally:
            self.parts.leases.release(job_id, stage_name, token)

    def _run_held_stage(self, job: Job, stage: Stage, record: dict[str, Any],
                        token: str) -> None:
        job_id, stage_name = job.id, stage.name
        if job.status == "queued":
            job = self.parts.jobs.update(job_id, status="processing",
                                   started_at=job.started_at or time.time(),
                                   worker=self.parts.worker_name)
        records = self.parts.jobs.store.load_stages(job_id)
        records[stage_name] = record
        self._sync_progress(job_id, job.kind, records)
        outputs = {n: r.get("output") or {} for n, r in records.items()
                   if r.get("status") == "done"}
        ctx = RunningStage(job_id, self.parts.storage, self.parts.engine_settings, self.parts.jobs, self.parts.chains,
                           deadline=time.monotonic() + stage.timeout, events=self.parts.events,
                           lease=token, leases=self.parts.leases, stage=stage_name,
                           report=self.reporter(job_id, stage_name, token))
        started = time.perf_counter()
        try:
            output = stage.run(ctx, job.params, outputs)
            ctx.check_lease()
        except LeaseLost:
            log.warning("stage taken over by another worker; this run stops",
                        extra={"job_id": job_id, "stage": stage_name})
            return
        except Cancelled:
            if self._stage_failed(job_id, stage_name, token, None):
                self.parts.jobs.update(job_id, status="cancelled", current_step="cancelled")
            return
        except TransientBackendError as exc:
            if record["attempts"] <= stage.retries:
                if self._write_stage(job_id, stage_name, token, status="retrying",
                                     error=error_record(exc)):
                    self.parts.huey.enqueue(self.run_stage.s(
                        job_id, stage_name, run_of(job),
                        priority=stage_priority(job, self.stage_index(job.kind, stage_name)),
                        delay=stage.retry_delay * 2 ** (record["attempts"] - 1)))
                    log.info("stage retry scheduled", extra={"job_id": job_id,
                                                             "stage": stage_name})
                return
            self._stage_failed(job_id, stage_name, token, error_record(exc))
            return
        except StudioError as exc:
            self._stage_failed(job_id, stage_name, token, error_record(exc))
            return
        except Exception as exc:  # a bug must not leave the job 'processing'
            error = storage_error(exc)
            if error is None:
                log.exception("stage crashed", extra={"job_id": job_id, "stage": stage_name})
                error = {"code": "QUEUE_JOB_CRASHED", "message": f"Internal error in stage "
                         f"{stage_name}: {type(exc).__name__}",
                         "message_ja": f"ステージ {stage_name} で内部エラー: "
                                       f"{type(exc).__name__}"}
            self._stage_failed(job_id, stage_name, token, error)
            return
        seconds = time.perf_counter() - started
        if not self._write_stage(job_id, stage_name, token, status="done", progress=1.0,
                                 output=output or {}, duration=round(seconds, 3),
                                 finished_at=time.time()):
            return  # a newer run owns this stage: its result stands, not ours
        log.info("stage done", extra={"job_id": job_id, "stage": stage_name,
                                      "duration_ms": round(1000 * seconds),
                                      "backend": (output or {}).get("backend")})
        self.parts.events.send(StageDone(stage_name, (output or {}).get("backend"), seconds))
        records = self.parts.jobs.store.load_stages(job_id)
        job = self.parts.jobs.get(job_id)
        if job.final:
            return
        self._sync_progress(job_id, job.kind, records)
        self.enqueue_ready(job, records)

    def _stage_failed(self, job_id: str, stage: str, token: str,
                      error: dict[str, Any] | None) -> bool:
        if not self._write_stage(job_id, stage, token,
                                 status="cancelled" if error is None else "failed",
                                 error=error, finished_at=time.time()):
            return False
        if error is not None:
            self.fail_job(job_id, stage, error)
        return True

    def fail_job(self, job_id: str, stage: str, error: dict[str, Any]) -> None:
        """Fail the whole job for its stage ``stage`` (the reaper's, too)."""
        job = self.parts.jobs.update(job_id, status="failed", current_step=stage,
                               error={**error, "stage": stage})
        if job.status == "failed":
            self.parts.events.send(JobFinished(job.kind, "failed"))
        log.warning("stage failed", extra={"job_id": job_id, "stage": stage,
                                           "code": error.get("code")})

    def stages(self, job_id: str) -> dict[str, dict[str, Any]]:
        return self.parts.jobs.store.load_stages(job_id)


def _mark_queued(record: dict[str, Any]) -> bool:
    if record.get("status") in ("running", "done", "skipped"):
        return False
    record.update(status="queued", queued_at=time.time(), progress=0.0, error=None)
    return True
