"""A burst of message submissions over REST, shared by ``test_load.py`` (small, in CI) and
``bench/load.py`` (bigger N, a table): the requests, an RSS sampler for the app process, and
the bookkeeping that proves no job was lost or run twice."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

PORTRAIT = Path(__file__).resolve().parents[2] / "fixtures" / "data" / "portrait_glasses.jpg"
SHORT_TEXT = "おめでとう！"


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    seconds: float

    @property
    def task_id(self) -> str | None:
        return (self.body.get("data") or {}).get("task_id") if self.status == 202 else None

    @property
    def code(self) -> str | None:
        return (self.body.get("error") or {}).get("code")


def post_message(url: str, text: str = SHORT_TEXT, photo: bytes | None = None,
                 **fields: str) -> Answer:
    data = {"text": text, "bgm_type": "none", **fields}
    files = {"image": ("me.jpg", photo or PORTRAIT.read_bytes(), "image/jpeg")}
    started = time.perf_counter()
    response = httpx.post(f"{url}/api/video/generate", data=data, files=files, timeout=120)
    return Answer(response.status_code, response.json(), dict(response.headers),
                  time.perf_counter() - started)


def burst(url: str, n: int, **fields: str) -> list[Answer]:
    """``n`` submissions at once (one thread each, released together)."""
    photo = PORTRAIT.read_bytes()
    gate = threading.Barrier(n)

    def one(_: int) -> Answer:
        gate.wait()
        return post_message(url, photo=photo, **fields)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


@dataclass
class RssSampler:
    """Samples this process's resident memory every ``every`` seconds while running."""

    every: float = 0.1
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        proc = psutil.Process()

        def run() -> None:
            while not self._stop.is_set():
                self.samples.append(proc.memory_info().rss)
                self._stop.wait(self.every)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max(self.samples) / 2**20

    @property
    def first_mb(self) -> float:
        return self.samples[0] / 2**20


def wait_all(services: Any, job_ids: list[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = {i: services.jobs.get(i) for i in job_ids}
        if all(j.final for j in jobs.values()):
            return jobs
        time.sleep(0.2)
    raise TimeoutError({i: services.jobs.get(i).status for i in job_ids})


def stage_attempts(services: Any, job_id: str) -> dict[str, int]:
    """How many times each stage that ran was started (1 each: none lost, none doubled)."""
    return {name: int(rec.get("attempts", 0))
            for name, rec in services.queue.stages(job_id).items()
            if rec.get("status") != "skipped"}
