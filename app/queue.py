"""The huey queue and the bridge from a huey task to a pipeline job handler.

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
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from huey import MemoryHuey, PriorityRedisHuey, SqliteHuey, signals
from huey.api import Huey, Task, TaskWrapper

from app import heartbeat
from app.jobs import Job, Jobs
from app.leases import DEFAULT_SECONDS, LeaseKeeper, LeaseLost, new_token
from app.reaper import Reaping, run_of, stage_priority
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
MAX_ATTEMPTS = 3  # runs of one stage (or unstaged job) before a lost worker fails the job


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

    def others_waiting(self) -> bool:
        return self.waiting is not None and self.waiting() > 0


@dataclass
class RunningStage(RunningJob):
    """The context of one stage of a staged job: progress goes to the stage's record, and
    the job's progress is recomputed from all its stages (weighted by their cost)."""

    stage: str = ""
    queue: TaskQueue | None = None
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
            assert self.queue is not None
            self.queue._stage_progress(self.job_id, self.stage, fraction, step, self.lease)
            self._last_write = now
            self._last_step = step

    def step_done(self, step: str) -> None:
        """Sub-steps inside a stage are reported through progress only."""


class TaskQueue(Reaping):
    """Enqueue jobs, run them on huey workers, cancel them, retry them, count them."""

    def __init__(
        self, huey: Huey, jobs: Jobs, storage: Storage, engine_settings: EngineSettings,
        chains: Callable[[str], FallbackChain], *, max_queued: int = 50,
        job_timeout: float = 1800.0, admission: Callable[[], None] | None = None,
        lease_seconds: float = DEFAULT_SECONDS, max_attempts: int = MAX_ATTEMPTS,
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
        self.max_attempts = max_attempts
        self.leases = LeaseKeeper(jobs, lease_seconds)
        self.heartbeat = heartbeat.install(huey)  # beats while this process consumes
        self.heartbeat.running = self.leases.held  # /health shows what each worker runs
        self.leases.on_change = self.heartbeat.beat_if_consuming
        self._reaper: threading.Thread | None = None
        self._reaper_stop = threading.Event()
        huey.on_startup("studio_reaper")(self.start_reaper)
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

    def _run_held_job(self, job: Job, handler: pipeline_tasks.JobHandler, token: str) -> None:
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
        except pipeline_tasks.MakeWay as pause:
            self._make_way(job, token, pause)
            return
        except StudioError as exc:
            if end(status="failed", error=error_record(exc)):
                log.warning("job failed", extra={"job_id": job_id, "code": exc.code})
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the job 'processing'
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

    def _make_way(self, job: Job, token: str, pause: pipeline_tasks.MakeWay) -> None:
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
        if job.kind in pipeline_tasks.STAGED:
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
                               steps_remaining=pipeline_tasks.STEPS.get(job.kind, []))
        self.huey.enqueue(task)
        return job

    # -- staged jobs -----------------------------------------------------------------

    def _stages(self, kind: str) -> list[Stage]:
        return pipeline_tasks.STAGED[kind]

    def _enqueue_ready(self, job: Job, records: dict[str, dict[str, Any]],
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
                    self.jobs.store.save_stage(job.id, stage.name,
                                               {"status": "skipped", "progress": 1.0})
                    settled.add(stage.name)
                    changed = True
        stage_index = {st.name: i for i, st in enumerate(self._stages(job.kind))}
        for stage in self._stages(job.kind):
            if stage.name in settled or not set(stage.after) <= settled:
                continue
            if records.get(stage.name, {}).get("status") in ("running", "queued", "retrying"):
                continue
            if self.jobs.store.set_flag(job.id, f"queued:{run_of(job)}:{stage.name}") or force:
                # 'queued' in the record: the reaper knows this stage waits in the queue
                self.jobs.store.modify_stage(job.id, stage.name, _mark_queued)
                self.huey.enqueue(self.run_stage.s(job.id, stage.name, run_of(job),
                                                   priority=stage_priority(job, stage_index[
                                                       stage.name]), expires=expires))
        if settled >= {st.name for st in self._stages(job.kind)}:
            self._finish(job, force=force)

    def _finish(self, job: Job, force: bool = False) -> None:
        if not self.jobs.store.set_flag(job.id, f"finished:{run_of(job)}") and not force:
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
            fresh = {**records, **self.jobs.store.load_stages(job_id)}
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

        self.jobs.store.modify(job_id, apply)

    def _stage_progress(self, job_id: str, stage: str, fraction: float, step: str,
                        token: str | None) -> None:
        def report(record: dict[str, Any]) -> bool:
            if token is not None and record.get("lease") != token:
                return False
            record["progress"] = min(max(fraction, 0.0), 1.0)
            record["step"] = step
            record["lease_until"] = self.leases.deadline()  # progress renews it, too
            return True

        record = self.jobs.store.modify_stage(job_id, stage, report)
        if token is not None and record.get("lease") != token:
            raise LeaseLost(f"Another worker took stage {stage} over.")
        job = self.jobs.get(job_id)
        records = self.jobs.store.load_stages(job_id)
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

        self.jobs.store.modify_stage(job_id, stage, guarded)
        if not written:
            log.warning("stage result discarded: another worker took the stage over",
                        extra={"job_id": job_id, "stage": stage})
        return written

    def _run_stage(self, job_id: str, stage_name: str, run: int) -> None:
        job = self.jobs.store.load(job_id)
        if job is None or job.final or run_of(job) != run:
            return  # gone, finished, failed by a sibling, or superseded by a retry
        if self.jobs.cancel_requested(job_id):
            self.jobs.update(job_id, status="cancelled", current_step="cancelled")
            return
        stage = next(st for st in self._stages(job.kind) if st.name == stage_name)
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
                          worker=self.worker_name, error=None, lease=token,
                          lease_until=self.leases.deadline())
            claimed = True
            return True

        record = self.jobs.store.modify_stage(job_id, stage_name, claim)
        if not claimed:
            if record.get("status") in ("done", "skipped"):
                self._enqueue_ready(job, self.jobs.store.load_stages(job_id))
            return
        log.info("stage started", extra={"job_id": job_id, "stage": stage_name,
                                         "attempt": record["attempts"],
                                         "worker": self.worker_name})
        self.leases.hold(job_id, stage_name, token)
        try:
            self._run_held_stage(job, stage, record, token)
        finally:
            self.leases.release(job_id, stage_name, token)

    def _run_held_stage(self, job: Job, stage: Stage, record: dict[str, Any],
                        token: str) -> None:
        job_id, stage_name = job.id, stage.name
        if job.status == "queued":
            job = self.jobs.update(job_id, status="processing",
                                   started_at=job.started_at or time.time(),
                                   worker=self.worker_name)
        records = self.jobs.store.load_stages(job_id)
        records[stage_name] = record
        self._sync_progress(job_id, job.kind, records)
        outputs = {n: r.get("output") or {} for n, r in records.items()
                   if r.get("status") == "done"}
        ctx = RunningStage(job_id, self.storage, self.engine_settings, self.jobs, self.chains,
                           deadline=time.monotonic() + stage.timeout, metrics=self.metrics,
                           lease=token, leases=self.leases, stage=stage_name, queue=self)
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
                self.jobs.update(job_id, status="cancelled", current_step="cancelled")
            return
        except TransientBackendError as exc:
            if record["attempts"] <= stage.retries:
                if self._write_stage(job_id, stage_name, token, status="retrying",
                                     error=error_record(exc)):
                    self.huey.enqueue(self.run_stage.s(
                        job_id, stage_name, run_of(job),
                        priority=stage_priority(job, self._stages(job.kind).index(stage)),
                        delay=stage.retry_delay * 2 ** (record["attempts"] - 1)))
                    log.info("stage retry scheduled", extra={"job_id": job_id,
                                                             "stage": stage_name})
                return
            self._stage_failed(job_id, stage_name, token, error_record(exc))
            return
        except StudioError as exc:
            self._stage_failed(job_id, stage_name, token, error_record(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the job 'processing'
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
        if self.metrics is not None:
            self.metrics.observe_stage(stage_name, (output or {}).get("backend"), seconds)
        records = self.jobs.store.load_stages(job_id)
        job = self.jobs.get(job_id)
        if job.final:
            return
        self._sync_progress(job_id, job.kind, records)
        self._enqueue_ready(job, records)

    def _stage_failed(self, job_id: str, stage: str, token: str,
                      error: dict[str, Any] | None) -> bool:
        if not self._write_stage(job_id, stage, token,
                                 status="cancelled" if error is None else "failed",
                                 error=error, finished_at=time.time()):
            return False
        if error is not None:
            self._fail_job(job_id, stage, error)
        return True

    def _fail_job(self, job_id: str, stage: str, error: dict[str, Any]) -> None:
        job = self.jobs.update(job_id, status="failed", current_step=stage,
                               error={**error, "stage": stage})
        if self.metrics is not None and job.status == "failed":
            self.metrics.observe_job(job.kind, "failed")
        log.warning("stage failed", extra={"job_id": job_id, "stage": stage,
                                           "code": error.get("code")})

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
        self._reaper_stop.set()
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None


def _mark_queued(record: dict[str, Any]) -> bool:
    if record.get("status") in ("running", "done", "skipped"):
        return False
    record.update(status="queued", queued_at=time.time(), progress=0.0, error=None)
    return True


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
