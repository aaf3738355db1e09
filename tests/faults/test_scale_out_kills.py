"""Scale-out that survives, with real processes: a redis-server, moto's S3 server,
the app with no workers of its own, and three ``huey_consumer`` processes with their own data
dirs. Workers are killed with SIGKILL while they hold a stage — the one that started the job,
another one, and then every worker followed by a single new one — and each job still ends
completed, with the lost attempt counted and nothing left ``processing``.

Leases are shorter here (``STUDIO_LEASE_SECONDS=10``) so a death is noticed in seconds; the
default (20 s) is what a deployment uses. Not 3 s: beside five other processes on a loaded
2-core machine, a living worker whose renewals (every lease/4) stall for a few seconds, say
while it imports a model, would lose its lease too, and the counts of lost workers and
attempts below would then judge the machine's load, not the takeover."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.services import build_services
from tests.app.runner.test_queue_distributed import redis_url  # noqa: F401 - the shared fixture
from tests.conftest import LiveServer, free_port
from tests.faults.cluster import AWS, Cluster, check_logs, wait_until, worker_env

pytestmark = pytest.mark.slow

LEASE = 10.0
# each branch takes ~3 s in 30 reports, so a kill always lands inside a running stage
JOB = {"seconds": 0.5, "slices": 30, "delay": 0.1, "with_optional": True}


@pytest.fixture
def cluster(redis_url, moto_s3, settings, tmp_path: Path, monkeypatch):  # noqa: F811
    import redis

    queue_url = redis_url.rsplit("/", 1)[0] + "/3"
    redis.Redis.from_url(queue_url).flushdb()
    for key, value in AWS.items():
        monkeypatch.setenv(key, value)
    bucket = f"studio-kills-{free_port()}"
    s3 = {"storage": "s3", "s3_bucket": bucket, "s3_endpoint_url": moto_s3}
    # the app creates the missing bucket, as the README's scaling section tells it to
    app_settings = settings.model_copy(update={
        "queue_url": queue_url, "workers": 0, "lease_seconds": LEASE, "s3_create_bucket": True,
        **s3})
    services = build_services(app_settings)
    env = worker_env(AWS, queue_url=queue_url, storage="s3", s3_bucket=bucket,
                     s3_endpoint_url=moto_s3, lease_seconds=str(LEASE))
    group = Cluster(services, env, tmp_path)
    try:
        yield group
    finally:
        group.stop_all()
        services.close()


def _final(cluster: Cluster, job_id: str) -> dict:
    job = wait_until(lambda: (j := cluster.services.jobs.get(job_id)).final and j, 120,
                     f"job {job_id} to end")
    return job.to_dict()


def test_killed_workers_stages_are_taken_over_by_the_living(cluster: Cluster) -> None:
    services = cluster.services
    first = [cluster.start() for _ in range(3)]
    cluster.wait_beating(first)
    with LiveServer(services) as server:
        # /health lists the three external workers, with their hosts, although
        # STUDIO_WORKERS=0 in the app
        workers = httpx.get(f"{server.url}/health").json()["data"]["queue"]["workers"]
        assert workers["in_process_threads"] == 0
        assert {p["worker"] for p in workers["processes"]} == {w.name for w in first}
        assert all(p["host"] and p["threads"] == 1 for p in workers["processes"])

        # 1. the worker that started the job dies in the middle of its stage
        job = services.queue.submit("diagnostics.staged", JOB)
        starter = wait_until(lambda: services.jobs.get(job.id).worker, 60, "a starter")
        name, held = wait_until(lambda: cluster.running_stage(
            job.id, where=lambda r: r["worker"] == starter and r.get("progress", 0) > 0.1),
            60, "the starter inside a stage")
        shown = httpx.get(f"{server.url}/health").json()["data"]["queue"]["workers"]
        running = {p["worker"]: p["running"] for p in shown["processes"]}
        assert {"job_id": job.id, "stage": name} in running[starter]  # what each one runs
        cluster.by_name(starter).kill()
        final = _final(cluster, job.id)
        assert final["status"] == "completed", final
        stages = services.queue.stages(job.id)
        assert stages[name]["attempts"] == 2 and stages[name]["lost_workers"] == [starter]
        assert stages[name]["worker"] != starter
        assert final["attempts"] == 2
        assert all(r["status"] == "done" for r in stages.values())

        # 2. a worker that did not start the job dies in the middle of its stage
        job = services.queue.submit("diagnostics.staged", JOB)
        starter = wait_until(lambda: services.jobs.get(job.id).worker, 60, "a starter")
        name, held = wait_until(lambda: cluster.running_stage(
            job.id, where=lambda r: r["worker"] != starter and r.get("progress", 0) > 0.1),
            60, "another worker inside a stage")
        victim = held["worker"]
        cluster.by_name(victim).kill()
        assert cluster.by_name(starter).proc.poll() is None  # the starter lives on
        final = _final(cluster, job.id)
        assert final["status"] == "completed", final
        stages = services.queue.stages(job.id)
        assert stages[name]["lost_workers"] == [victim] and stages[name]["attempts"] == 2

        # 3. every worker dies; a single new one (on "another machine": its own data dir)
        # takes the whole job over
        job = services.queue.submit("diagnostics.staged", JOB)
        wait_until(lambda: cluster.running_stage(job.id, where=lambda r: r.get("progress", 0)
                                                 > 0.1), 60, "a stage under way")
        for worker in cluster.live():
            worker.kill()
        assert services.jobs.get(job.id).status == "processing"  # what the deaths leave
        new = cluster.start()
        final = _final(cluster, job.id)
        assert final["status"] == "completed", final
        stages = services.queue.stages(job.id)
        taken = [r for r in stages.values() if r.get("lost_workers")]
        assert taken and all(r["worker"] == new.name for r in taken)

        # the result is in the bucket and downloads
        output = httpx.get(services.storage.url(final["result"]["output_key"]), timeout=30)
        assert output.status_code == 200 and output.content[:4] == b"RIFF"
    assert services.jobs.count("processing") == 0
    lines = check_logs([w.stop() for w in cluster.workers])
    started = [ln for ln in lines if ln["event"] == "stage started"]
    assert started and all(ln["metadata"]["job_id"] and ln["metadata"]["stage"]
                           for ln in started)
    executing = [ln for ln in lines if ln["event"].startswith("Executing")
                 and "studio.run_stage" in ln["event"]]
    assert executing and all(ln["metadata"].get("stage") for ln in executing)


def test_message_survives_a_worker_killed_at_each_stage(cluster: Cluster, tmp_path: Path
                                                        ) -> None:
    """A real message over Redis and S3; the worker holding its image, voice, render and
    encode is SIGKILLed in turn (a fresh worker joins after each death, as an autoscaler
    would). The message completes; the stages that finished are never run again."""
    from tests.app.api.test_message import PORTRAIT, ffprobe
    from tests.faults.test_crash_restart import TEXT

    services = cluster.services
    cluster.wait_beating([cluster.start() for _ in range(3)])
    with LiveServer(services) as server:
        answer = httpx.post(f"{server.url}/api/video/generate", timeout=60,
                            data={"text": TEXT, "bgm_type": "celebration"},
                            files={"image": ("me.jpg", PORTRAIT.read_bytes(), "image/jpeg")})
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["data"]["task_id"]

        def holder(stage: str, low: float, high: float = 1.0,
                   steps: tuple[str, ...] = ()) -> str | None:
            found = cluster.running_stage(job_id, stage, where=lambda r: low <= float(
                r.get("progress", 0)) <= high or any(s in str(r.get("step")) for s in steps))
            return found[1]["worker"] if found else None

        killed = {}
        # the render is caught by its step too: progress is written at most every 0.5 s,
        # and on a fast machine this message's frames took ~1 s, passing 0.2-0.6 unwritten
        for stage, low, high, steps in (("image", 0.05, 1.0, ()), ("voice", 0.1, 1.0, ()),
                                        ("video", 0.2, 0.6, ("render",)),
                                        ("video", 0.8, 1.0, ("encode", "store"))):
            victim = wait_until(lambda s=stage, lo=low, hi=high, st=steps: holder(s, lo, hi, st),
                                240, f"a worker inside {stage} {low}-{high}", every=0.02)
            cluster.by_name(victim).kill()
            killed.setdefault(stage, []).append(victim)
            cluster.start()
        final = _final(cluster, job_id)
        assert final["status"] == "completed", final
        stages = services.queue.stages(job_id)
        for stage, victims in killed.items():
            assert stages[stage]["lost_workers"] == victims
            assert stages[stage]["attempts"] == len(victims) + 1
        assert stages["prosody"]["attempts"] == 1 and stages["bgm"]["attempts"] == 1
        video = tmp_path / "message.mp4"
        video.write_bytes(httpx.get(services.storage.url(final["result"]["video_key"]),
                                    timeout=60).content)
        assert {s["codec_type"] for s in ffprobe(video)["streams"]} == {"video", "audio"}
    assert services.jobs.count("processing") == 0
    check_logs([w.stop() for w in cluster.workers])


def test_sqlite_queue_on_one_machine_the_same(settings, tmp_path: Path) -> None:
    """Two ``huey_consumer`` processes on one SQLite queue and data dir: the one holding a
    stage is killed; the other takes the stage over without any restart."""
    url = f"sqlite:///{tmp_path}/data/queue.sqlite3"
    services = build_services(settings.model_copy(update={
        "queue_url": url, "workers": 0, "lease_seconds": LEASE}))
    env = worker_env(queue_url=url, data_dir=str(settings.data_dir), lease_seconds=str(LEASE))
    group = Cluster(services, env, tmp_path, own_dirs=False)  # the SQLite file is shared
    try:
        workers = [group.start(), group.start()]
        group.wait_beating(workers)
        job = services.queue.submit("diagnostics.staged", {**JOB, "with_optional": False})
        name, held = wait_until(lambda: group.running_stage(
            job.id, where=lambda r: r.get("progress", 0) > 0.1), 60, "a stage under way")
        group.by_name(held["worker"]).kill()
        final = _final(group, job.id)
        assert final["status"] == "completed", final
        stages = services.queue.stages(job.id)
        assert stages[name]["lost_workers"] == [held["worker"]]
        assert stages[name]["worker"] in {w.name for w in group.live()}
        assert services.storage.exists(final["result"]["output_key"])
        check_logs([w.stop() for w in group.workers])
    finally:
        group.stop_all()
        services.close()
