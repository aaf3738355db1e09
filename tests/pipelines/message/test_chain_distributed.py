"""The scaled-out shape (docs/scaling.md), for real: Redis (a redis-server on loopback) as
queue and job store, S3 (moto's server, over HTTP) as storage, the app with no workers of
its own, and two separate ``huey_consumer app.worker.huey`` processes with their own data
dirs. A message submitted to the app is rendered by the worker processes (its two first
stages side by side, one in each) and downloads through the app's presigned ``video_url``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.runner.heartbeat import live_workers
from app.services import build_services
from tests.app.api.test_message import PORTRAIT, TEXT, ffprobe, judge, poll
from tests.app.runner.test_queue_distributed import ROOT, redis_url, worker_env  # noqa: F401 - fixture
from tests.conftest import LiveServer, free_port
from tests.faults.cluster import HOST, wait_until

pytestmark = pytest.mark.slow

AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
       "AWS_DEFAULT_REGION": "us-east-1"}


def consumer(env: dict[str, str]) -> subprocess.Popen:
    """One worker thread polling at least every 0.5 s (huey backs off to 10 s when idle)."""
    return subprocess.Popen(
        [sys.executable, "-m", "huey.bin.huey_consumer", "app.worker.huey", "-k", "thread",
         "-w", "1", "-m", "0.5"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_message_rendered_by_worker_processes_over_redis_and_s3(
        redis_url, moto_s3, settings, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    import boto3
    import redis

    queue_url = redis_url.rsplit("/", 1)[0] + "/2"
    redis.Redis.from_url(queue_url).flushdb()
    for key, value in AWS.items():
        monkeypatch.setenv(key, value)
    bucket = f"studio-{free_port()}"
    boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1").create_bucket(
        Bucket=bucket)
    s3 = {"storage": "s3", "s3_bucket": bucket, "s3_endpoint_url": moto_s3}
    app_settings = settings.model_copy(update={"queue_url": queue_url, "workers": 0, **s3})
    services = build_services(app_settings)
    workers = []
    for n in (1, 2):
        env = worker_env(tmp_path / f"worker{n}", queue_url)
        env.update(AWS, STUDIO_STORAGE="s3", STUDIO_S3_BUCKET=bucket,
                   STUDIO_S3_ENDPOINT_URL=moto_s3)
        workers.append(consumer(env))
    try:
        # both consumers beat before the message goes in: on a loaded machine one still
        # importing would leave both first stages to the other (and "both took part" to luck)
        names = {f"{HOST}:{w.pid}" for w in workers}
        wait_until(lambda: names <= {r.worker for r in live_workers(services.queue.huey)[0]},
                   180, f"workers {sorted(names)} to beat")
        with LiveServer(services) as server:
            accepted = httpx.post(
                f"{server.url}/api/video/generate", timeout=60,
                data={"text": TEXT, "bgm_type": "celebration"},
                files={"image": ("me.jpg", PORTRAIT.read_bytes(), "image/jpeg")})
            assert accepted.status_code == 202, accepted.text
            task_id = accepted.json()["data"]["task_id"]
            final = poll(server, task_id, timeout=400)
            assert final["status"] == "completed", final

            # every stage ran in a worker process, and both workers took part
            pids = {str(w.pid) for w in workers}
            stages = services.queue.stages(task_id)
            ran_in = {r["worker"].rpartition(":")[2] for r in stages.values()
                      if r["status"] == "done"}
            assert ran_in == pids, (ran_in, pids)
            assert stages["image"]["worker"] != stages["voice"]["worker"]

            # the app hands out a presigned S3 link, and the file behind it is the video
            url = final["video_url"]
            assert url.startswith(moto_s3) and "Signature" in url
            video = tmp_path / "message.mp4"
            video.write_bytes(httpx.get(url, timeout=60).content)
            streams = {s["codec_type"]: s for s in ffprobe(video)["streams"]}
            assert streams["video"]["codec_name"] == "h264"
            assert streams["audio"]["codec_name"] == "aac"
            judge(video, music=True)  # looked at and listened to
            history = httpx.get(f"{server.url}/api/messages").json()["data"]["messages"]
            assert history[0]["video_url"].startswith(moto_s3)
        # nothing went through a local disk: all artifacts live in the bucket
        for data_dir in (app_settings.data_dir, tmp_path / "worker1", tmp_path / "worker2"):
            assert not (data_dir / "files").exists()
        keys = {o.key for o in services.storage.list("videos/final")}
        assert services.jobs.get(task_id).result["video_key"] in keys
    finally:
        logs = []
        for proc in workers:
            proc.terminate()
            logs.append(proc.communicate(timeout=60)[0])
        services.close()
    for log in logs:
        assert "Traceback" not in log, log[-3000:]
