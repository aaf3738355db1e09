"""Start-up cost of the studio: launch.py to first /health 200, import time, idle RSS.

    .venv/bin/python bench/startup.py [--runs 5]

Each run starts ``launch.py`` in a fresh data dir on a free port, as a person would.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_start() -> tuple[float, float]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "STUDIO_DATA_DIR": data, "STUDIO_PORT": str(port),
               "STUDIO_LOG_FORMAT": "json"}
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), "--no-browser"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError("launch.py exited")
                time.sleep(0.02)
            ready = time.perf_counter() - started
            time.sleep(3.0)  # idle
            rss = psutil.Process(proc.pid).memory_info().rss / 2**20
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return ready, rss


def import_time() -> float:
    code = "import time; t=time.perf_counter(); import app.main, app.ui; print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    imports = [import_time() for _ in range(3)]
    starts = [one_start() for _ in range(args.runs)]
    print("| measure | median | min | max |")
    print("|---|---|---|---|")
    print(f"| import app.main + app.ui (s) | {statistics.median(imports):.2f} | "
          f"{min(imports):.2f} | {max(imports):.2f} |")
    ready = [s[0] for s in starts]
    rss = [s[1] for s in starts]
    print(f"| launch.py -> first /health 200 (s), n={args.runs} | {statistics.median(ready):.2f} "
          f"| {min(ready):.2f} | {max(ready):.2f} |")
    print(f"| idle RSS after start (MiB) | {statistics.median(rss):.0f} | {min(rss):.0f} | "
          f"{max(rss):.0f} |")


if __name__ == "__main__":
    main()
