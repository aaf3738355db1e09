"""Real processes for the kill tests: ``huey_consumer app.worker.huey`` workers started and
SIGKILLed by a test, and waits on job and stage states (never on the clock alone)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from app.services import Services
from tests.conftest import end_process

ROOT = Path(__file__).resolve().parents[2]
AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
       "AWS_DEFAULT_REGION": "us-east-1"}
HOST = socket.gethostname()
T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str, every: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)


class Worker:
    """One ``huey_consumer`` process; its output goes to a file the test reads at the end."""

    def __init__(self, env: dict[str, str], log: Path, threads: int = 1) -> None:
        self.log = log
        self.handle = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "huey.bin.huey_consumer", "app.worker.huey", "-k",
             "thread", "-w", str(threads), "-m", "0.2"],
            cwd=ROOT, env=env, stdout=self.handle, stderr=subprocess.STDOUT, text=True)
        self.name = f"{HOST}:{self.proc.pid}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> str:
        end_process(self.proc)
        self.handle.close()
        return self.log.read_text()


class Cluster:
    """Workers sharing one queue and store, each with its own data dir."""

    def __init__(self, services: Services, base_env: dict[str, str], tmp: Path,
                 own_dirs: bool = True) -> None:
        self.services = services
        self.base_env = base_env
        self.tmp = tmp
        self.own_dirs = own_dirs  # False: every worker on the base env's data dir
        self.workers: list[Worker] = []

    def start(self, threads: int = 1) -> Worker:
        n = len(self.workers) + 1
        env = dict(self.base_env)
        if self.own_dirs:
            env["STUDIO_DATA_DIR"] = str(self.tmp / f"worker{n}")
        worker = Worker(env, self.tmp / f"worker{n}.log", threads)
        self.workers.append(worker)
        return worker

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.proc.poll() is None]

    def by_name(self, name: str | None) -> Worker | None:
        return next((w for w in self.workers if w.name == name), None)

    def wait_beating(self, workers: list[Worker], timeout: float = 120) -> None:
        """Until each worker process has started its consumer threads (its heartbeat)."""
        from app.runner.heartbeat import live_workers

        names = {w.name for w in workers}
        wait_until(lambda: names <= {r.worker for r in live_workers(self.services.queue.huey)[0]},
                   timeout, f"workers {sorted(names)} to beat")

    def running_stage(self, job_id: str, stage: str | None = None,
                      where: Callable[[dict[str, Any]], bool] = lambda r: True,
                      ) -> tuple[str, dict[str, Any]] | None:
        for name, record in self.services.queue.stages(job_id).items():
            if record.get("status") == "running" and (stage is None or name == stage) \
                    and where(record):
                return name, record
        return None

    def stop_all(self) -> list[str]:
        return [w.stop() for w in self.workers]


HUEY_FORMAT = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+\] \w+:huey")


def check_logs(logs: list[str]) -> list[dict[str, Any]]:
    """Python's log lines are JSON objects, each once: no second, huey-formatted copy of a
    line (native libraries such as TFLite write their own lines to stderr; those pass). No
    traceback."""
    lines = []
    for log in logs:
        assert "Traceback" not in log, log[-3000:]
        for raw in log.splitlines():
            assert not HUEY_FORMAT.match(raw), f"huey printed its own copy: {raw[:200]}"
            if raw.startswith("{"):
                lines.append(json.loads(raw))
    assert lines
    return lines


def worker_env(base: dict[str, str] | None = None, **studio: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env.update({"PYTHONPATH": str(ROOT), "STUDIO_LOG_FORMAT": "json", "STUDIO_WORKERS": "0"})
    env.update(base or {})
    env.update({f"STUDIO_{k.upper()}": v for k, v in studio.items()})
    return env
