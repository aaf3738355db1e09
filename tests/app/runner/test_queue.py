"""Job records and the huey queue: progress, cancel, priority, expiry, in-process workers."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from app.runner.jobs import Jobs
from app.runner.queue import IDLE_POLL_MAX_S
from app.runner.stores import MemoryJobStore, SqliteJobStore
from app.services import build_services
from models.errors import Conflict, NotFound
from tests.conftest import wait_for_job


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_job_record_lifecycle(store_kind: str, tmp_path: Path) -> None:
    store = MemoryJobStore() if store_kind == "memory" else SqliteJobStore(tmp_path / "j.db")
    jobs = Jobs(store)
    job = jobs.create("diagnostics.tone", {"a": 1}, ["prepare", "render"], owner="u1")
    assert job.status == "queued" and job.steps_remaining == ["prepare", "render"]
    jobs.start(job.id, "w1")
    jobs.step_done(job.id, "prepare")
    jobs.update(job.id, progress=55.0, current_step="render")
    got = jobs.get(job.id)
    assert (got.status, got.progress, got.steps_completed, got.steps_remaining) == (
        "processing", 55.0, ["prepare"], ["render"])
    jobs.update(job.id, status="completed", result={"x": 1})
    done = jobs.get(job.id)
    assert done.finished_at is not None and done.final
    with pytest.raises(Conflict):
        jobs.request_cancel(job.id)
    assert jobs.counts()["completed"] == 1
    assert [j.id for j in jobs.list(owner="u1")] == [job.id]
    assert jobs.list(owner="someone-else") == []
    assert jobs.delete(job.id) is True
    with pytest.raises(NotFound):
        jobs.get(job.id)


def test_sqlite_store_is_shared_between_instances(tmp_path: Path) -> None:
    """Two stores on one file see each other's writes (as two processes would)."""
    a, b = Jobs(SqliteJobStore(tmp_path / "j.db")), Jobs(SqliteJobStore(tmp_path / "j.db"))
    job = a.create("k")
    b.update(job.id, progress=42.0)
    b.store.set_flag(job.id, "cancel")
    assert a.get(job.id).progress == 42.0
    assert a.cancel_requested(job.id)


@pytest.fixture(params=["memory://", "sqlite"])
def worker_services(request, settings, tmp_path: Path):
    url = request.param if request.param != "sqlite" else f"sqlite:///{tmp_path}/q.db"
    svc = build_services(settings.model_copy(update={"queue_url": url, "workers": 2}))
    yield svc
    svc.close()


def test_job_runs_on_worker_threads(worker_services) -> None:
    svc = worker_services
    svc.queue.start_consumer(2, install_signals=False)
    job = svc.queue.submit("diagnostics.tone", {"seconds": 0.5, "slices": 3})
    final = wait_for_job(svc, job.id)
    assert final["status"] == "completed", final
    assert final["progress"] == 100.0
    assert final["steps_completed"] == ["prepare", "render", "store"]
    assert final["steps_remaining"] == []
    assert svc.storage.exists(final["result"]["output_key"])


def test_an_idle_worker_looks_at_the_queue_at_least_twice_a_second(worker_services) -> None:
    """Huey's workers back off to 10 s between looks at a polled queue: a profile asked for
    after a minute of quiet waited seconds before it began. A hundred idle sleeps of one of
    our workers (a copy, so the running one is left alone) never wait longer than
    ``IDLE_POLL_MAX_S``."""
    svc = worker_services
    svc.queue.start_consumer(1, install_signals=False)
    assert svc.queue._consumer is not None
    worker = copy.copy(svc.queue._consumer.worker_threads[0][0])
    waits: list[float] = []

    class Flag:
        def wait(self, seconds: float) -> bool:
            waits.append(seconds)
            return False

    worker.stop_flag = Flag()
    for _ in range(100):
        worker.sleep()
    assert IDLE_POLL_MAX_S <= 1.0
    assert max(waits) == pytest.approx(IDLE_POLL_MAX_S) and waits[0] < IDLE_POLL_MAX_S


def test_cancel_queued_job_never_runs(worker_services) -> None:
    svc = worker_services
    job = svc.queue.submit("diagnostics.tone", {"seconds": 0.2})
    cancelled = svc.queue.cancel(job.id)
    assert cancelled.status == "cancelled"
    svc.queue.start_consumer(1, install_signals=False)
    # One worker takes jobs in order: once a job queued after it has run, the worker has
    # been past the cancelled one (instead of waiting a second and hoping).
    later = svc.queue.submit("diagnostics.tone", {"seconds": 0.1})
    assert wait_for_job(svc, later.id)["status"] == "completed"
    after = svc.jobs.get(job.id)
    assert after.status == "cancelled"
    assert after.started_at is None


def test_cancel_running_job_stops_at_next_step(worker_services) -> None:
    svc = worker_services
    svc.queue.start_consumer(1, install_signals=False)
    job = svc.queue.submit("diagnostics.tone", {"seconds": 2, "slices": 40, "delay": 0.1})
    deadline = time.monotonic() + 30
    while svc.jobs.get(job.id).status != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    svc.queue.cancel(job.id)
    final = wait_for_job(svc, job.id, timeout=30)
    assert final["status"] == "cancelled"
    assert final["result"] is None
    # the worker is free again: a new job completes
    again = svc.queue.submit("diagnostics.tone", {"seconds": 0.2})
    assert wait_for_job(svc, again.id)["status"] == "completed"


def test_expired_job_is_marked_failed(worker_services) -> None:
    svc = worker_services
    job = svc.queue.submit("diagnostics.tone", {"seconds": 0.2}, expires=0.2)
    time.sleep(0.6)
    svc.queue.start_consumer(1, install_signals=False)
    final = wait_for_job(svc, job.id, timeout=30)
    assert final["status"] == "failed"
    assert final["error"]["code"] == "QUEUE_JOB_EXPIRED"


def test_queue_full_is_503_with_retry_after(settings) -> None:
    svc = build_services(settings.model_copy(update={"max_queued": 2}))
    try:
        from fastapi.testclient import TestClient

        from app.main import create_app

        with TestClient(create_app(svc, with_ui=False)) as client:
            codes = [client.post("/api/jobs/diagnostics", json={}).status_code for _ in range(3)]
            assert codes == [202, 202, 503]
            body = client.post("/api/jobs/diagnostics", json={}).json()
            assert body["error"]["code"] == "QUEUE_FULL"
            assert body["error"]["retry_after"] > 0
    finally:
        svc.close()


def test_job_routes(client, services) -> None:
    accepted = client.post("/api/jobs/diagnostics", json={"seconds": 0.3, "priority": 7})
    assert accepted.status_code == 202
    job_id = accepted.json()["data"]["task_id"]
    view = client.get(f"/api/jobs/{job_id}").json()["data"]
    assert view["status"] == "queued" and view["priority"] == 7
    assert client.post(f"/api/jobs/{job_id}/cancel").json()["data"]["status"] == "cancelled"
    again = client.post(f"/api/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "QUEUE_JOB_FINISHED"
    missing = client.get("/api/jobs/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "QUEUE_JOB_NOT_FOUND"
    bad = client.post("/api/jobs/diagnostics", json={"priority": 11})
    assert bad.status_code == 400
    assert bad.json()["error"]["details"]["fields"][0]["field"] == "priority"


def test_queue_runs_on_the_scheduler_and_reaper_it_is_given(settings, tmp_path: Path) -> None:
    """The queue holds its parts: built here by hand (a reaper that gives a lost stage one
    attempt only), it runs a staged job through the given scheduler and takes a dead
    worker's stage back through the given reaper; both tell the one event registry."""
    from app.runner import heartbeat
    from app.runner.events import Event, Events, JobFinished, StageDone
    from app.runner.leases import LeaseKeeper
    from app.runner.queue import TaskQueue, create_huey
    from app.runner.reaper import Reaper
    from app.runner.running import WorkerParts
    from app.runner.stages import StageScheduler
    from app.runner.unstaged import UnstagedRunner
    from app.storage import LocalStorage
    from models.chain import FallbackChain
    from pipelines.jobs import job_kinds

    huey = create_huey("memory://")
    jobs = Jobs(MemoryJobStore())
    storage = LocalStorage(tmp_path / "files")
    kinds, events, heard = job_kinds(), Events(), []
    events.connect(heard.append)
    leases = LeaseKeeper(jobs, 2.0)
    beat = heartbeat.install(huey, running=leases.held)
    chains = lambda capability: FallbackChain(capability, [])  # noqa: E731 - none needed
    parts = WorkerParts(huey, jobs, storage, settings.engine_settings(), chains, kinds, leases,
                        events, "here:1")
    unstaged = UnstagedRunner(parts)
    scheduler = StageScheduler(parts)
    reaper = Reaper(huey, jobs, leases=leases, heartbeat=beat, scheduler=scheduler,
                    unstaged=unstaged, consuming=lambda: False, max_attempts=1)
    queue = TaskQueue(huey, jobs, kinds=kinds, events=events, heartbeat=beat,
                      unstaged=unstaged, scheduler=scheduler, reaper=reaper)
    assert queue.scheduler is scheduler and queue.reaper is reaper
    assert queue.run_stage is scheduler.run_stage

    lost = queue.submit("diagnostics.staged", {"seconds": 0.2})
    huey.flush()  # its tasks died with their worker
    jobs.update(lost.id, status="processing")
    jobs.store.save_stage(lost.id, "low", {"status": "running", "attempts": 1,
                                           "worker": "gone:7", "lease": "old",
                                           "lease_until": time.time() - 1})
    assert queue.reap() == [f"{lost.id}:low"]
    assert jobs.get(lost.id).error["code"] == "QUEUE_WORKER_LOST"  # one attempt: given
    assert JobFinished("diagnostics.staged", "failed") in heard

    queue.start_consumer(1, install_signals=False)
    try:
        job = queue.submit("diagnostics.staged", {"seconds": 0.2})
        deadline = time.monotonic() + 60
        while not jobs.get(job.id).final:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        queue.stop_consumer()
    assert jobs.get(job.id).status == "completed"
    done: list[Event] = [e for e in heard if isinstance(e, StageDone)]
    assert {e.stage for e in done} == {"low", "high", "join"}
    assert [(e.kind, e.status) for e in heard if isinstance(e, JobFinished)][-1] == (
        "diagnostics.staged", "completed")


def test_a_jobs_events_reach_a_subscriber(services) -> None:
    """What a job does is told to whoever subscribed to the queue's events: the stages it
    timed, the steps the runner timed, each engine chain it ran, and how it ended."""
    from app.runner.events import ChainRan, Event, JobFinished, StageDone, StepDone
    from models.chain import ChainResult
    from tests.ops.helpers import install_ops_jobs

    heard: list[Event] = []
    services.queue.events.connect(heard.append)
    gen = install_ops_jobs(services)
    next(gen)
    services.queue.start_consumer(1, install_signals=False)
    try:
        job = services.queue.submit("ops.message", {})
        assert wait_for_job(services, job.id, timeout=60)["status"] == "completed"
        deadline = time.monotonic() + 30
        while not any(isinstance(e, JobFinished) for e in heard):  # told after the task ends
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        services.queue.stop_consumer()
        gen.close()
    [ran] = [e for e in heard if isinstance(e, ChainRan)]
    assert ran.capability == "tts" and isinstance(ran.outcome, ChainResult)
    assert ran.outcome.backend == "piper" and ran.outcome.fallback_used
    assert [(e.stage, e.backend) for e in heard if isinstance(e, StageDone)] == [
        ("synthesize", "piper"), ("render", "builtin")]
    assert [e.step for e in heard if isinstance(e, StepDone)] == ["store"]
    [finished] = [e for e in heard if isinstance(e, JobFinished)]
    assert (finished.kind, finished.status) == ("ops.message", "completed")
    assert finished.seconds is not None and finished.seconds >= 0
