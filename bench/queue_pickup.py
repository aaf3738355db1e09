"""How long a job waits in the queue before a worker starts it, after the queue was quiet.

    /work/main/.venv/bin/python bench/queue_pickup.py [--idle 5,20,60] [--rounds 2]

Two studios on the default SQLite queue run side by side in this process, each with one
in-process worker: one as the studio starts its workers (``IDLE_POLL_MAX_S``), one with
huey's own backoff (up to 10 s between looks, what the studio had before). For each quiet
spell (``--idle`` seconds, no job) both get a short job at the same moment; the table gives
the seconds from submit to the job's start, per spell (median over ``--rounds``), and the
ratio of the studio's wait to huey's default in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import app.runner.queue as queue_module  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.services import Services, build_services  # noqa: E402

HUEY_DEFAULT_MAX_DELAY_S = 10.0


def studio(max_delay: float) -> Services:
    """A studio whose worker backs off to ``max_delay`` (read once, when it starts)."""
    data = Path(tempfile.mkdtemp(prefix="queue_pickup_"))
    services = build_services(load_settings(data_dir=data, workers=1,
                                            queue_url=f"sqlite:///{data}/queue.db"))
    kept = queue_module.IDLE_POLL_MAX_S
    queue_module.IDLE_POLL_MAX_S = max_delay
    try:
        services.queue.start_consumer(1, install_signals=False)
    finally:
        queue_module.IDLE_POLL_MAX_S = kept
    return services


def waits(pair: dict[str, Services]) -> dict[str, float]:
    """Submit a job to each studio at once; seconds until each began."""
    submitted = {name: (s, s.queue.submit("diagnostics.tone", {"seconds": 0.1}).id,
                        time.time()) for name, s in pair.items()}
    began: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while len(began) < len(submitted) and time.monotonic() < deadline:
        for name, (services, job_id, at) in submitted.items():
            job = services.jobs.get(job_id)
            if name not in began and job.started_at is not None:
                began[name] = job.started_at - at
        time.sleep(0.01)
    for services, job_id, _ in submitted.values():  # let each finish before the next spell
        while not services.jobs.get(job_id).final:
            time.sleep(0.05)
    return began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", default="5,20,60", help="quiet spells, seconds")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    pair = {"studio": studio(queue_module.IDLE_POLL_MAX_S),
            "huey default": studio(HUEY_DEFAULT_MAX_DELAY_S)}
    try:
        waits(pair)  # both workers warm
        print("quiet spell | studio wait | huey default wait | ratio studio / default")
        print("------------+-------------+-------------------+------------------------")
        for idle in [float(x) for x in args.idle.split(",")]:
            got: dict[str, list[float]] = {name: [] for name in pair}
            for _ in range(args.rounds):
                time.sleep(idle)
                for name, seconds in waits(pair).items():
                    got[name].append(seconds)
            ours, theirs = (statistics.median(got[n]) for n in ("studio", "huey default"))
            print(f"{idle:9.0f} s | {ours:9.2f} s | {theirs:15.2f} s | "
                  f"{ours / max(theirs, 1e-3):.2f}", flush=True)
    finally:
        for services in pair.values():
            services.queue.stop_consumer()
            services.close()


if __name__ == "__main__":
    main()
