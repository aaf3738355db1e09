"""tests/app/api/test_message_load.py at a bigger scale than CI runs it: bursts of concurrent message
submissions over REST (loopback) against a studio with a small queue.

    /work/main/.venv/bin/python bench/load.py [--n 20,50] [--max-queued 5] [--workers 2]
                                              [--rate-limit 0] [--text おめでとう！]

For each burst size N it prints how the answers split (202 accepted, 503 QUEUE_FULL,
429 RATE_LIMITED, anything else), whether every accepted job completed exactly once (each
stage started once, one distinct video each, no job the app did not accept), how long the
accepted jobs took to drain, submit latency, and the app process's memory. The studio (API,
queue and worker threads) runs in this process, as ``launch.py`` runs it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import load_settings  # noqa: E402
from app.services import build_services  # noqa: E402
from tests.app.api.load import (  # noqa: E402
    SHORT_TEXT,
    RssSampler,
    burst,
    post_message,
    stage_attempts,
    wait_all,
)
from tests.conftest import LiveServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="20,50", help="burst sizes, comma-separated")
    parser.add_argument("--max-queued", type=int, default=5, help="STUDIO_MAX_QUEUED")
    parser.add_argument("--workers", type=int, default=2, help="worker threads")
    parser.add_argument("--rate-limit", type=int, default=0,
                        help="STUDIO_RATE_LIMIT_PER_MINUTE (0 = off, to study the queue)")
    parser.add_argument("--text", default=SHORT_TEXT)
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="bench-load-"))
    settings = load_settings(
        data_dir=data / "data", queue_url=f"sqlite:///{data}/queue.sqlite3",
        workers=args.workers, max_queued=args.max_queued,
        rate_limit_per_minute=args.rate_limit)
    services = build_services(settings)
    services.queue.start_consumer(args.workers, install_signals=False)
    rows = []
    with LiveServer(services) as server, RssSampler() as rss:
        warm = post_message(server.url, text=args.text)
        warm_id = warm.task_id
        if warm_id is None:
            raise SystemExit(f"the warm-up message was refused: {warm.status} {warm.body}")
        wait_all(services, [warm_id], timeout=600)
        print(f"warm-up message done; RSS {rss.samples[-1] / 2**20:.0f} MB "
              f"(started at {rss.first_mb:.0f} MB)")
        known = {warm_id}
        for n in (int(x) for x in args.n.split(",")):
            before = len(rss.samples)
            started = time.perf_counter()
            answers = burst(server.url, n, text=args.text)
            statuses = Counter(a.status for a in answers)
            accepted = [a.task_id for a in answers if a.task_id]
            jobs = wait_all(services, accepted, timeout=3600)
            drained = time.perf_counter() - started
            known.update(accepted)
            completed = sum(j.status == "completed" for j in jobs.values())
            doubled = sum(1 for i in accepted
                          if set(stage_attempts(services, i).values()) != {1})
            videos = {j.result["video_key"] for j in jobs.values() if j.result}
            stray = {j.id for j in services.jobs.list(limit=100_000)} - known
            missing_retry = sum(1 for a in answers if a.status in (429, 503)
                                and not (a.body.get("error") or {}).get("retry_after"))
            latency = [a.seconds for a in answers]
            window = rss.samples[before:] or rss.samples[-1:]
            rows.append([n, statuses.get(202, 0), statuses.get(503, 0), statuses.get(429, 0),
                         sum(v for k, v in statuses.items() if k not in (202, 429, 503)),
                         missing_retry, completed, len(accepted) - completed, doubled,
                         len(accepted) - len(videos), len(stray), f"{drained:.1f}",
                         f"{statistics.median(latency):.2f}/{max(latency):.2f}",
                         f"{max(window) / 2**20:.0f}"])
    services.close()
    header = ["N", "202", "503", "429", "other", "no retry_after", "completed", "lost",
              "stage run twice", "dup video", "stray jobs", "drain s", "submit s med/max",
              "peak RSS MB"]
    cells = [header, *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\nBursts over REST: max_queued={args.max_queued}, workers={args.workers}, "
          f"rate limit={args.rate_limit or 'off'}/min")
    for k, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print(f"peak RSS over the whole run: {rss.peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
