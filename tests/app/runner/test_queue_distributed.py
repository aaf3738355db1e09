"""A job enqueued by the app completes in a separate ``huey_consumer`` process, with Redis
(a real redis-server on loopback) and with the default SQLite queue."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.services import build_services
from tests.conftest import LiveServer, free_port, require_binary

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_binary("redis-server")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def start_consumer(env: dict[str, str], workers: int = 2) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "huey.bin.huey_consumer", "app.worker.huey", "-k", "thread",
         "-w", str(workers)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def worker_env(data_dir: Path, queue_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env.update({"STUDIO_DATA_DIR": str(data_dir), "STUDIO_QUEUE_URL": queue_url,
                "STUDIO_WORKERS": "0", "PYTHONPATH": str(ROOT), "STUDIO_LOG_FORMAT": "json"})
    return env


def poll(url: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = httpx.get(url).json()["data"]
        if data["status"] in ("completed", "failed", "cancelled"):
            return data
        time.sleep(0.1)
    raise TimeoutError(url)


@pytest.mark.slow
@pytest.mark.parametrize("queue", ["redis", "sqlite"])
def test_job_from_app_completes_in_consumer_process(queue: str, settings, tmp_path: Path,
                                                    request) -> None:
    url = request.getfixturevalue("redis_url") if queue == "redis" \
        else f"sqlite:///{tmp_path}/data/queue.sqlite3"
    app_settings = settings.model_copy(update={"queue_url": url, "workers": 0})
    services = build_services(app_settings)
    consumer = start_consumer(worker_env(app_settings.data_dir, url))
    try:
        with LiveServer(services) as server:
            accepted = httpx.post(f"{server.url}/api/jobs/diagnostics",
                                  json={"seconds": 0.5, "slices": 5, "delay": 0.05})
            assert accepted.status_code == 202
            job_id = accepted.json()["data"]["task_id"]
            final = poll(f"{server.url}/api/jobs/{job_id}")
            assert final["status"] == "completed", final
            assert final["steps_completed"] == ["prepare", "render", "store"]
            # it ran in the other process, not in this one
            record = services.jobs.get(job_id)
            assert record.worker is not None
            assert record.worker.endswith(f":{consumer.pid}")
            # and the app serves the artifact the worker wrote
            audio = httpx.get(server.url + final["output_url"])
            assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    finally:
        consumer.terminate()
        output, _ = consumer.communicate(timeout=30)
        services.close()
    assert "Traceback" not in output


@pytest.mark.slow
def test_redis_honours_priority(redis_url: str, settings) -> None:
    """With one worker and a backlog, higher-priority jobs start first."""
    db_url = redis_url.rsplit("/", 1)[0] + "/1"
    import redis

    redis.Redis.from_url(db_url).flushdb()
    services = build_services(settings.model_copy(update={"queue_url": db_url, "workers": 0}))
    ids = {p: services.queue.submit("diagnostics.tone", {"seconds": 0.1}, priority=p).id
           for p in (0, 5, 10, 3)}
    consumer = start_consumer(worker_env(settings.data_dir, db_url), workers=1)
    try:
        deadline = time.monotonic() + 90
        while not all(services.jobs.get(i).final for i in ids.values()):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        order = sorted(ids, key=lambda p: services.jobs.get(ids[p]).started_at)
        assert order == [10, 5, 3, 0]
    finally:
        consumer.terminate()
        consumer.communicate(timeout=30)
        services.close()
