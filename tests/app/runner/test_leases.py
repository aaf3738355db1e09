"""Stage leases inside one process (the SQLite queue): an expired lease of any worker is taken
back and its attempt counted, a run that lost its lease cannot overwrite the newer result,
a stage that lost its worker too often fails the job with the reason, and the pieces around
them (temp-file sweep, log fields, disk errors). The real kills are in tests/faults/."""

from __future__ import annotations

import errno
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.logs import JsonFormatter, TaskFields
from app.runner.leases import LeaseKeeper, LeaseLost
from app.services import build_services
from app.storage import LocalStorage, os_error_record, validate_key
from models.errors import InvalidInput
from tests.app.runner.test_queue_distributed import redis_url  # noqa: F401 - the shared fixture
from tests.conftest import wait_for_job

SLOW_STAGE = {"seconds": 0.3, "slices": 20, "delay": 0.1}


@pytest.fixture
def svc(settings, tmp_path: Path):
    services = build_services(settings.model_copy(update={
        "queue_url": f"sqlite:///{tmp_path}/data/queue.sqlite3", "workers": 0,
        "lease_seconds": 2.0}))
    yield services
    services.close()


def wait_until(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError(what)


def dead_stage(svc, job_id: str, stage: str, *, attempts: int = 1,
               worker: str = "gone-host:4242") -> None:
    """What a worker on another machine leaves when it dies mid-stage: a running record,
    its lease past the deadline, the job 'processing' and naming *another* worker."""
    svc.jobs.update(job_id, status="processing", worker="live-host:1", started_at=time.time())
    svc.jobs.store.save_stage(job_id, stage, {
        "status": "running", "attempts": attempts, "worker": worker, "progress": 0.4,
        "lease": "old-token", "lease_until": time.time() - 1, "started_at": time.time() - 5})


def test_expired_lease_of_another_workers_stage_is_taken_back(svc) -> None:
    job = svc.queue.submit("diagnostics.staged", {"seconds": 0.2})
    svc.queue.huey.flush()  # the tasks died with their worker
    dead_stage(svc, job.id, "low")
    svc.jobs.store.save_stage(job.id, "high", {"status": "done", "attempts": 1, "output": {
        "key": svc.storage.put("temp/high.wav", _wav())}})
    taken = svc.queue.reap()
    assert taken == [f"{job.id}:low"]
    record = svc.queue.stages(job.id)["low"]
    assert record["status"] == "queued" and record["lease"] is None
    assert record["lost_workers"] == ["gone-host:4242"]
    assert svc.queue.reap() == []  # taken once only
    svc.queue.start_consumer(1, install_signals=False)
    final = wait_for_job(svc, job.id, timeout=60)
    assert final["status"] == "completed", final
    stages = svc.queue.stages(job.id)
    assert stages["low"]["attempts"] == 2  # the lost run counts
    assert stages["high"]["attempts"] == 1  # a finished stage is not redone
    assert final["attempts"] == 2


def test_stage_that_lost_its_worker_too_often_fails_the_job(svc) -> None:
    job = svc.queue.submit("diagnostics.staged", {"seconds": 0.2})
    svc.queue.huey.flush()
    dead_stage(svc, job.id, "low", attempts=3)
    svc.queue.reap()
    final = svc.jobs.get(job.id)
    assert final.status == "failed"
    assert final.error["code"] == "QUEUE_WORKER_LOST" and final.error["stage"] == "low"
    assert "3 times" in final.error["message"] and "gone-host:4242" in final.error["message"]
    assert svc.queue.stages(job.id)["low"]["status"] == "failed"


def test_late_owner_cannot_overwrite_the_newer_run(svc) -> None:
    svc.queue.start_consumer(1, install_signals=False)
    job = svc.queue.submit("diagnostics.staged", {**SLOW_STAGE, "seconds": 0.2})
    first = wait_until(lambda: next((r for r in svc.queue.stages(job.id).values()
                                     if r.get("status") == "running"), None), what="a run")
    # The owner is suspended (not dead): its lease runs out and another worker takes over.
    name = next(n for n, r in svc.queue.stages(job.id).items() if r.get("lease") == first["lease"])
    svc.jobs.store.modify_stage(job.id, name, lambda r: r.update(
        status="running", lease="newer-token", lease_until=time.time() + 60) or True)
    # the old owner's result write is refused, and its next report stops it
    assert not svc.queue.scheduler._write_stage(job.id, name, first["lease"], status="done",
                                                output={"key": "temp/stale.wav"})
    with pytest.raises(LeaseLost):
        svc.queue.scheduler.stage_progress(job.id, name, 0.9, "late", first["lease"])
    record = svc.queue.stages(job.id)[name]
    assert record["lease"] == "newer-token" and record["status"] == "running"
    assert record.get("output") is None


def test_keeper_renews_and_notices_a_lost_lease(svc) -> None:
    keeper = LeaseKeeper(svc.jobs, seconds=1.0)
    job = svc.jobs.create("diagnostics.staged")
    svc.jobs.store.save_stage(job.id, "low", {"status": "running", "lease": "mine",
                                              "lease_until": time.time() + 1})
    first = svc.queue.stages(job.id)["low"]["lease_until"]
    keeper.hold(job.id, "low", "mine")
    assert keeper.held() == [{"job_id": job.id, "stage": "low"}]
    wait_until(lambda: svc.queue.stages(job.id)["low"]["lease_until"] > first, what="renewal")
    svc.jobs.store.modify_stage(job.id, "low", lambda r: r.update(lease="theirs") or True)
    wait_until(lambda: keeper.lost("mine"), what="loss noticed")
    keeper.release(job.id, "low", "mine")
    assert keeper.held() == [] and not keeper.lost("mine")


@pytest.mark.parametrize("end", ["done", "failed", "cancelled", "retrying"])
def test_a_run_that_wrote_its_end_has_not_lost_its_lease(svc, caplog, end: str) -> None:
    """Between a run writing its end (which clears the lease) and giving the lease back, the
    keeper may renew once more: that is no loss, and no warning says so. A record the
    reaper took back (pending, no lease) is."""
    keeper = LeaseKeeper(svc.jobs, seconds=1.0)
    job = svc.jobs.create("diagnostics.staged")
    svc.jobs.store.save_stage(job.id, "low", {"status": end, "lease": None,
                                              "lease_until": None})
    keeper._held[(job.id, "low")] = "mine"  # held, not yet released
    with caplog.at_level(logging.WARNING, logger="studio.leases"):
        keeper.renew_all()
    assert not keeper.lost("mine") and "lease lost" not in caplog.text
    svc.jobs.store.save_stage(job.id, "low", {"status": "pending", "lease": None,
                                              "lease_until": None})
    with caplog.at_level(logging.WARNING, logger="studio.leases"):
        keeper.renew_all()
    assert keeper.lost("mine") and "lease lost to another worker" in caplog.text


def test_an_unstaged_job_that_ended_has_not_lost_its_lease(svc, caplog) -> None:
    keeper = LeaseKeeper(svc.jobs, seconds=1.0)
    job = svc.jobs.create("diagnostics.tone")
    svc.jobs.update(job.id, status="completed", lease=None, lease_until=None)
    keeper._held[(job.id, None)] = "mine"
    with caplog.at_level(logging.WARNING, logger="studio.leases"):
        keeper.renew_all()
    assert not keeper.lost("mine") and "lease lost" not in caplog.text
    other = svc.jobs.create("diagnostics.tone")
    svc.jobs.update(other.id, status="processing", lease="theirs", lease_until=time.time() + 9)
    keeper._held[(other.id, None)] = "mine too"
    with caplog.at_level(logging.WARNING, logger="studio.leases"):
        keeper.renew_all()
    assert keeper.lost("mine too") and "lease lost to another worker" in caplog.text


def test_unstaged_job_of_a_dead_worker_is_requeued(svc) -> None:
    job = svc.queue.submit("diagnostics.tone", {"seconds": 0.2})
    svc.queue.huey.flush()
    svc.jobs.update(job.id, status="processing", worker="gone-host:7", attempts=1,
                    lease="old", lease_until=time.time() - 1)
    assert svc.queue.reap() == [job.id]
    assert svc.jobs.get(job.id).status == "queued"
    svc.queue.start_consumer(1, install_signals=False)
    final = wait_for_job(svc, job.id, timeout=60)
    assert final["status"] == "completed" and final["attempts"] == 2
    assert final["lease"] is None
    # a late write of the lost run is refused
    assert svc.jobs.update(job.id, holder="old", reopen=True, status="failed").status \
        == "completed"


def test_job_whose_worker_died_between_stages_is_driven_on(svc) -> None:
    """Killed after 'low' and 'high' were saved done, after claiming the join's queue flag
    but before queueing it."""
    job = svc.queue.submit("diagnostics.staged", {"seconds": 0.2})
    svc.queue.huey.flush()
    svc.jobs.update(job.id, status="processing")
    for name in ("low", "high"):
        svc.jobs.store.save_stage(job.id, name, {"status": "done", "attempts": 1, "output": {
            "key": svc.storage.put(f"temp/{name}.wav", _wav())}})
    assert svc.jobs.store.set_flag(job.id, "queued:1:join")
    svc.queue.reap()
    assert "join" not in svc.queue.stages(job.id)  # a live worker may be handing over
    svc.jobs.store.modify(job.id, lambda j: setattr(j, "updated_at", time.time() - 10) or True)
    svc.queue.reap()  # nothing moved for a lease's time: driven on
    assert svc.queue.stages(job.id)["join"]["status"] == "queued"
    svc.queue.start_consumer(1, install_signals=False)
    assert wait_for_job(svc, job.id, timeout=60)["status"] == "completed"


def test_tasks_taken_off_the_queue_by_a_worker_that_died_are_queued_again(svc) -> None:
    """A worker popped the task and was killed before it claimed the stage (or job)."""
    staged = svc.queue.submit("diagnostics.staged", {"seconds": 0.2})
    plain = svc.queue.submit("diagnostics.tone", {"seconds": 0.2})
    svc.queue.huey.flush()  # the tasks left the queue with their worker
    assert svc.queue.stages(staged.id)["low"]["status"] == "queued"
    svc.queue.reap()
    assert svc.queue.huey.pending_count() == 0  # too fresh to judge: could be in hand
    old = time.time() - 10
    for name in ("low", "high"):
        svc.jobs.store.modify_stage(staged.id, name, lambda r: r.update(queued_at=old) or True)
    svc.jobs.store.modify(plain.id, lambda j: setattr(j, "updated_at", old) or True)
    svc.queue.reap()
    assert svc.queue.huey.pending_count() == 3
    svc.queue.reap()
    assert svc.queue.huey.pending_count() == 3  # once: they are in the queue now
    svc.queue.start_consumer(1, install_signals=False)
    assert wait_for_job(svc, staged.id, timeout=60)["status"] == "completed"
    assert wait_for_job(svc, plain.id, timeout=60)["status"] == "completed"


def test_temp_files_of_dead_writers_are_swept_and_never_keys(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "files")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = tmp_path / "files" / "videos" / "final"
    folder.mkdir(parents=True)
    stale = folder / f".tmp-{dead.pid}-abc.mp4"
    stale.write_bytes(b"half a video")
    live = folder / ".tmp-1-def.mp4"  # pid 1 runs: a writer in another process
    live.write_bytes(b"being written")
    storage.put("videos/final/whole.mp4", b"a whole video")
    assert [o.key for o in storage.list("videos")] == ["videos/final/whole.mp4"]
    assert storage.sweep_temp() == [f"videos/final/{stale.name}"]
    assert not stale.exists() and live.exists()
    with pytest.raises(InvalidInput):
        validate_key(f"videos/final/{live.name}")  # never served through /files


def test_disk_errors_read_as_storage_errors() -> None:
    assert os_error_record(OSError(errno.ENOSPC, "No space left"))["code"] == "STORAGE_FULL"
    assert os_error_record(OSError(errno.EROFS, "Read-only"))["code"] == "STORAGE_READ_ONLY"
    assert os_error_record(OSError(errno.ECONNRESET, "reset")) is None
    assert os_error_record(ValueError("x")) is None


def test_huey_task_lines_carry_job_id_and_stage(svc) -> None:
    task = svc.queue.run_stage.s("job123", "video", 1)
    record = logging.LogRecord("huey", logging.INFO, __file__, 1, "Executing %s", (task,), None)
    assert TaskFields().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["metadata"]["job_id"] == "job123" and line["metadata"]["stage"] == "video"


def _wav() -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(2400, dtype=np.float32), 24000, format="WAV")
    return buffer.getvalue()


def test_missing_bucket_is_named_with_the_command_or_created(moto_s3: str, aws_credentials,
                                                             settings, tmp_path: Path) -> None:
    from app.storage import S3Storage, create_storage
    from tests.conftest import free_port

    bucket = f"missing-{free_port()}"
    s3 = S3Storage(bucket, endpoint_url=moto_s3, cache_dir=tmp_path / "c")
    healthy, info = s3.health()
    assert not healthy
    assert f"aws s3 mb s3://{bucket} --endpoint-url {moto_s3}" in info
    assert "STUDIO_S3_CREATE_BUCKET=1" in info
    created = create_storage(settings.model_copy(update={
        "storage": "s3", "s3_bucket": bucket, "s3_endpoint_url": moto_s3,
        "s3_create_bucket": True}))
    assert created.health() == (True, f"s3 bucket {bucket}")
    created.put("temp/x.txt", b"x")
    assert s3.get("temp/x.txt") == b"x"


@pytest.mark.slow
def test_redis_stage_change_runs_again_after_a_conflicting_write(redis_url: str) -> None:  # noqa: F811
    """Two reapers read the same expired lease; the second one's write conflicts, its
    change runs again on the fresh record and sees the stage already taken."""
    import redis

    from app.runner.stores import RedisJobStore

    url = redis_url.rsplit("/", 1)[0] + "/4"
    redis.Redis.from_url(url).flushdb()
    store, other = RedisJobStore(url), RedisJobStore(url)
    store.save_stage("j", "video", {"status": "running", "lease": "old"})
    calls: list[str] = []

    def take(record: dict) -> bool:
        calls.append(record["status"])
        if len(calls) == 1:  # meanwhile, the other reaper takes it
            other.save_stage("j", "video", {"status": "queued", "lease": None})
        if record["status"] != "running" or record.get("lease") != "old":
            return False
        record.update(status="queued", lease=None)
        return True

    assert store.modify_stage("j", "video", take) == {"status": "queued", "lease": None}
    assert calls == ["running", "queued"]  # ran again on the fresh record, and refused
