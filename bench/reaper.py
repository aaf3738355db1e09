"""What one reaper pass costs with a long history: 100 finished jobs against 100 000.

    /work/main/.venv/bin/python bench/reaper.py [--small 100] [--large 100000] [--open 20]
                                                [--passes 15] [--stores sqlite,redis]

For each job store (SQLite beside the default queue; Redis when ``redis-server`` is
installed) it fills a history of finished message jobs, adds ``--open`` unfinished ones
(queued and processing, with stage records, as a busy studio has), and times
``TaskQueue.reap()`` — the reaper's whole pass — as the median of ``--passes`` passes. It
prints the pass time with the small and the large history and their ratio (1.0 = the pass
does not grow with history), beside the ratio of reading every record, which is what the
pass did before it read the index of unfinished jobs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import load_settings  # noqa: E402
from app.runner.jobs import Job  # noqa: E402
from app.runner.stores import RedisJobStore, SqliteJobStore  # noqa: E402
from app.services import Services, build_services  # noqa: E402


def median_seconds(fn: Callable[[], object], passes: int) -> float:
    fn()  # warm: connections, caches
    times = []
    for _ in range(passes):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def finished_jobs(n: int) -> Iterator[Job]:
    now = time.time()
    for i in range(n):
        yield Job(id=uuid.uuid4().hex, kind="message.generate", status="completed",
                  progress=100.0, steps_completed=["image", "voice", "prosody", "bgm", "video"],
                  params={"text": "おめでとう！" * 3, "image_key": f"inputs/images/{i}.png"},
                  result={"video_key": f"videos/final/{i}.mp4"}, owner="bench",
                  created_at=now - n + i, updated_at=now, finished_at=now)


def fill(services: Services, n: int) -> None:
    """Write ``n`` finished jobs in bulk (the store's own writes, batched: a 100 000-job
    history written one transaction at a time would take minutes)."""
    store = services.jobs.store
    jobs = list(finished_jobs(n))
    if isinstance(store, SqliteJobStore):
        conn = store._conn()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT OR REPLACE INTO jobs (id, created_at, status, kind, owner, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(j.id, j.created_at, j.status, j.kind, j.owner, json.dumps(j.to_dict()))
             for j in jobs])
        conn.execute("COMMIT")
    elif isinstance(store, RedisJobStore):
        with store.r.pipeline(transaction=False) as pipe:
            for i, job in enumerate(jobs):
                pipe.hset(store.key, job.id, json.dumps(job.to_dict()))
                if i % 5000 == 4999:
                    pipe.execute()
            pipe.execute()
    else:
        for job in jobs:
            store.save(job)


def add_open(services: Services, n: int) -> None:
    """``n`` unfinished staged jobs: half queued, half processing with a running stage whose
    lease is fresh (the pass looks at each and takes nothing back)."""
    now = time.time()
    for i in range(n):
        job = services.jobs.create("message.generate", {"text": "x"}, ["image", "voice"])
        if i % 2:
            services.jobs.update(job.id, status="processing", started_at=now)
            services.jobs.store.save_stage(job.id, "image", {
                "status": "running", "lease": uuid.uuid4().hex, "started_at": now,
                "lease_until": now + 3600, "worker": "bench:0", "attempts": 1})
        else:
            services.jobs.store.save_stage(job.id, "image", {"status": "queued",
                                                             "queued_at": now + 3600})


def measure(services: Services, history: int, open_jobs: int, passes: int
            ) -> tuple[float, float]:
    fill(services, history)
    add_open(services, open_jobs)
    taken = services.queue.reap()
    assert taken == [], taken  # nothing is lost: the pass only looks
    reap = median_seconds(services.queue.reap, passes)
    read_all = median_seconds(lambda: [j for j in services.jobs.store.all()
                                       if j.status in ("queued", "processing")],
                              max(3, passes // 5))
    return reap, read_all


@contextmanager
def redis_server() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="bench-reaper-redis-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def studio(queue_url: str, data: Path) -> Services:
    settings = load_settings(data_dir=data, queue_url=queue_url, open_browser=False)
    return build_services(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=20, help="unfinished jobs in both")
    parser.add_argument("--passes", type=int, default=15)
    parser.add_argument("--stores", default="sqlite,redis")
    args = parser.parse_args()

    rows = []
    with redis_server() as redis_url:
        for name in args.stores.split(","):
            if name == "redis" and redis_url is None:
                print("redis-server not installed: Redis skipped")
                continue
            results = []
            for n, db in ((args.small, 1), (args.large, 2)):
                data = Path(tempfile.mkdtemp(prefix="bench-reaper-"))
                url = (f"{redis_url}/{db}" if name == "redis"
                       else f"sqlite:///{data}/queue.sqlite3")
                if name == "redis":
                    import redis

                    redis.Redis.from_url(url).flushdb()
                services = studio(url, data)
                try:
                    results.append(measure(services, n, args.open, args.passes))
                finally:
                    services.close()
                    shutil.rmtree(data, ignore_errors=True)
            (small_reap, small_all), (large_reap, large_all) = results
            rows.append((name, small_reap, large_reap, large_reap / small_reap,
                         large_all / small_all))

    print(f"\nreaper pass, {args.open} unfinished jobs, median of {args.passes} passes")
    print(f"{'store':8} {args.small:>10,} done {args.large:>10,} done {'ratio':>7}"
          f"   {'read-every-record ratio':>24}")
    for name, small, large, ratio, old in rows:
        print(f"{name:8} {small * 1e3:12.2f} ms {large * 1e3:12.2f} ms {ratio:7.2f}"
              f"   {old:24.1f}")


if __name__ == "__main__":
    main()
