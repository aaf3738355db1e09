"""Staged jobs (the shape of a message): parallel branches, a join, retry from the failed
stage, cancel, and recovery after a worker process is killed."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from app.services import build_services
from tests.app.runner.test_queue_distributed import start_consumer, worker_env
from tests.conftest import wait_for_job


@pytest.fixture
def svc(settings, tmp_path: Path):
    services = build_services(settings.model_copy(update={
        "queue_url": f"sqlite:///{tmp_path}/data/queue.sqlite3", "workers": 2}))
    yield services
    services.close()


class Rendezvous:
    """Stands in for ``time`` inside the diagnostics stages: each branch's first pause waits
    (a barrier) until the other branch has started too. Branches that really run side by
    side meet there and overlap whatever the machine's speed; branches run one after the
    other never meet, the barrier breaks and the job fails."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=60)
        self.met: set[int] = set()

    def sleep(self, seconds: float) -> None:
        me = threading.get_ident()
        if me not in self.met:
            self.met.add(me)
            self.barrier.wait()
        time.sleep(seconds)


def test_branches_run_side_by_side_then_join(svc, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import diagnostics

    monkeypatch.setattr(diagnostics, "time", Rendezvous())
    svc.queue.start_consumer(2, install_signals=False)
    job = svc.queue.submit("diagnostics.staged", {"seconds": 0.3, "slices": 5, "delay": 0.1})
    final = wait_for_job(svc, job.id)
    assert final["status"] == "completed", final
    stages = svc.queue.stages(job.id)
    low, high = stages["low"], stages["high"]
    # the two branches overlapped in time
    assert low["started_at"] < high["finished_at"]
    assert high["started_at"] < low["finished_at"]
    assert stages["join"]["started_at"] >= max(low["finished_at"], high["finished_at"])
    assert stages["optional"]["status"] == "skipped"
    assert final["steps_completed"] == ["low", "high", "join", "optional"]
    assert svc.storage.exists(final["result"]["output_key"])
    assert [s["stage"] for s in final["result"]["stages"]] == ["low", "high", "join", "optional"]
    assert final["result"]["stages"][0]["backend"] == "diagnostics"


def test_progress_is_monotonic_and_weighted(svc) -> None:
    svc.queue.start_consumer(1, install_signals=False)
    job = svc.queue.submit("diagnostics.staged", {"seconds": 0.2, "slices": 10, "delay": 0.05})
    seen = []
    while True:
        record = svc.jobs.get(job.id)
        seen.append(record.progress)
        if record.final:
            break
        time.sleep(0.02)
    assert seen[-1] == 100.0
    assert any(0 < p < 100 for p in seen)
    assert all(b >= a - 1e-9 for a, b in zip(seen, seen[1:], strict=False))


def test_retry_resumes_from_failed_stage(svc) -> None:
    svc.queue.start_consumer(2, install_signals=False)
    gate = "temp/allow-high.txt"
    job = svc.queue.submit("diagnostics.staged", {"seconds": 0.2, "fail_stage": "high",
                                                  "fail_until_key": gate, "delay": 0.1})
    failed = wait_for_job(svc, job.id)
    assert failed["status"] == "failed"
    assert failed["error"]["stage"] == "high"
    assert failed["error"]["code"] == "QUEUE_DIAGNOSTIC_FAILURE"
    deadline = time.monotonic() + 30  # the sibling branch finishes its own work
    while svc.queue.stages(job.id).get("low", {}).get("status") != "done":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    before = svc.queue.stages(job.id)
    assert before["low"]["status"] == "done"
    low_key = before["low"]["output"]["key"]
    assert svc.storage.exists(low_key)  # finished artifacts are kept

    svc.storage.put(gate, b"ok")
    svc.queue.retry(job.id)
    final = wait_for_job(svc, job.id)
    assert final["status"] == "completed", final
    after = svc.queue.stages(job.id)
    assert after["low"]["attempts"] == 1  # not redone
    assert after["low"]["output"]["key"] == low_key
    assert after["high"]["attempts"] == 2


def test_retry_route_and_refusals(client, services) -> None:
    accepted = client.post("/api/jobs/diagnostics", json={}).json()["data"]["task_id"]
    response = client.post(f"/api/jobs/{accepted}/retry")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "QUEUE_JOB_NOT_RETRYABLE"
    client.post(f"/api/jobs/{accepted}/cancel")
    again = client.post(f"/api/jobs/{accepted}/retry")
    assert again.status_code == 202
    assert again.json()["data"]["status"] == "queued"


def test_cancel_staged_job_mid_run(svc) -> None:
    svc.queue.start_consumer(2, install_signals=False)
    job = svc.queue.submit("diagnostics.staged", {"seconds": 1, "slices": 50, "delay": 0.05})
    deadline = time.monotonic() + 30
    while svc.jobs.get(job.id).status != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    svc.queue.cancel(job.id)
    final = wait_for_job(svc, job.id)
    assert final["status"] == "cancelled"
    assert "join" not in {n for n, r in svc.queue.stages(job.id).items()
                          if r.get("status") == "done"}


@pytest.mark.slow
def test_worker_killed_mid_job_is_recovered(settings, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/data/queue.sqlite3"
    app = build_services(settings.model_copy(update={"queue_url": url, "workers": 0}))
    env = worker_env(settings.data_dir, url)
    first = start_consumer(env, workers=1)
    try:
        job = app.queue.submit("diagnostics.staged",
                               {"seconds": 1, "slices": 40, "delay": 0.1})
        deadline = time.monotonic() + 60
        while app.jobs.get(job.id).status != "processing":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        stuck = app.jobs.get(job.id)
        assert stuck.status == "processing"  # what a kill leaves behind
        second = start_consumer(env, workers=2)  # a restart recovers it
        try:
            final = wait_for_job(app, job.id, timeout=120)
        finally:
            second.terminate()
            second.communicate(timeout=30)
        assert final["status"] == "completed", (final["error"], app.queue.stages(job.id))
        assert final["attempts"] == 2
    finally:
        if first.poll() is None:
            first.kill()
        app.close()


def test_later_stages_go_first_so_messages_finish_in_order(svc) -> None:
    """With one worker and a backlog, a job under way finishes before the next one's first
    stages run (later stages carry a higher queue priority)."""
    first = svc.queue.submit("diagnostics.staged", {"seconds": 0.2})
    second = svc.queue.submit("diagnostics.staged", {"seconds": 0.2})
    svc.queue.start_consumer(1, install_signals=False)
    wait_for_job(svc, first.id)
    wait_for_job(svc, second.id)
    done_first = svc.jobs.get(first.id).finished_at
    second_stages = svc.queue.stages(second.id)
    assert done_first is not None
    # first come, first served would have run the second job's "low" before the first's join
    assert done_first <= second_stages["low"]["started_at"]


def test_a_running_stage_reports_through_the_callback_it_is_given(settings,
                                                                 tmp_path: Path) -> None:
    """A stage's progress goes to the callback its scheduler gave it (a new step at once,
    the same step at most twice a second, the end always), nowhere else."""
    from app.runner.jobs import Jobs
    from app.runner.running import RunningStage
    from app.runner.stores import MemoryJobStore
    from app.storage import LocalStorage
    from models.chain import FallbackChain

    jobs = Jobs(MemoryJobStore())
    job = jobs.create("diagnostics.staged")
    reports: list[tuple[float, str]] = []
    ctx = RunningStage(job.id, LocalStorage(tmp_path / "files"), settings.engine_settings(),
                       jobs, lambda capability: FallbackChain(capability, []),
                       deadline=time.monotonic() + 60, stage="video",
                       report=lambda fraction, step: reports.append((fraction, step)))
    ctx.progress(0.25, "render")
    ctx.progress(0.3, "render")  # too soon after the last: not sent
    ctx.progress(0.5, "encode")
    ctx.progress(1.0, "encode")
    assert reports == [(0.25, "render"), (0.5, "encode"), (1.0, "encode")]
    assert jobs.get(job.id).progress == 0.0  # the job's record is the scheduler's to roll up
