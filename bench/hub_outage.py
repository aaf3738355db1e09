"""A message with downloads allowed and the hub unreachable, against one with downloads off.

    .venv/bin/python bench/hub_outage.py [--runs 2]

With ``STUDIO_ALLOW_DOWNLOADS=1`` and no route to the hub, every message used to
retry the hub for BiRefNet, SegFormer, SAM2 and Wav2Lip inside the job (123 s instead of
~12 s). Now the model manager downloads in the background and the job goes straight to the
next engine. Three studios in this one process, each on its own data dir, run the same
message (``bench/message.py``'s photo and text) in turn:

  * ``off``: downloads off (the baseline);
  * ``refused``: downloads on, ``HF_ENDPOINT`` a loopback port nobody listens on;
  * ``hanging``: downloads on, ``HF_ENDPOINT`` a loopback server that accepts and never
    answers.

Each studio runs one warm-up message (engines load), then ``--runs`` measured ones, the cases
interleaved so machine load hits them alike. Prints wall times, the ratio to ``off`` and what
the jobs' fallback record said about the neural engines.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import load_settings  # noqa: E402
from app.services import Services, build_services  # noqa: E402
from bench.message import photo_1mp, run_one, table  # noqa: E402

NEURAL = (("cutout", "birefnet"), ("cutout", "segformer"), ("refiner", "sam2"),
          ("talking_head", "wav2lip"), ("voice_converter", "openvoice"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hanging_server() -> tuple[socket.socket, str]:
    """A listening socket that never accepts: connections complete, no byte ever comes."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def studio(name: str, root: Path, allow: bool) -> Services:
    data = root / name
    settings = load_settings(data_dir=data / "data", queue_url=f"sqlite:///{data}/q.sqlite3",
                             workers=2, max_queued=100, allow_downloads=allow)
    services = build_services(settings)
    services.queue.start_consumer(2, install_signals=False)
    return services


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="measured messages per case")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-hub-"))
    hang_sock, hang_url = hanging_server()
    endpoints = {"off": None, "refused": f"http://127.0.0.1:{free_port()}",
                 "hanging": hang_url}
    photo = photo_1mp()
    services: dict[str, Services] = {}
    walls: dict[str, list[float]] = {k: [] for k in endpoints}
    cpus: dict[str, list[float]] = {k: [] for k in endpoints}
    last: dict[str, dict[str, Any]] = {}
    for rnd in range(args.runs + 1):
        for case, endpoint in endpoints.items():
            if endpoint:
                os.environ["HF_ENDPOINT"] = endpoint
            if case not in services:
                services[case] = studio(case, root, allow=endpoint is not None)
            run = run_one(services[case], photo)
            if rnd:
                walls[case].append(run["wall"])
                cpus[case].append(run["cpu"])
            last[case] = run
            print(f"round {rnd} {case}: {run['wall']:.1f} s", flush=True)
    base = statistics.median(walls["off"])
    cpu_base = statistics.median(cpus["off"])
    rows = [[case, f"{statistics.median(w):.1f}", " ".join(f"{x:.1f}" for x in w),
             f"{statistics.median(w) / base:.2f}", f"{statistics.median(cpus[case]):.1f}",
             f"{statistics.median(cpus[case]) / cpu_base:.2f}"] for case, w in walls.items()]
    table("Message wall time and process CPU, seconds (median of the measured runs; warm-up "
          "excluded). CPU is less swayed by other load on the machine",
          ["case", "wall", "runs", "wall ratio", "cpu", "cpu ratio"], rows)
    rows = []
    for case, svc in services.items():
        row = [case]
        for capability, name in NEURAL:
            engine = svc.chain(capability).get(name)
            timings = []
            for _ in range(200):
                started = time.perf_counter()
                engine.available()
                timings.append(time.perf_counter() - started)
            row.append(f"{1e6 * statistics.median(timings):.0f}")
        rows.append(row)
    table("What a job pays to skip each neural engine: available(), microseconds (median of "
          "200 calls)", ["case", *(n for _, n in NEURAL)], rows)
    for case in ("refused", "hanging"):
        inventory = services[case].inventory()
        print(f"\n{case}: what /health says of the neural engines")
        for capability in ("cutout", "refiner", "talking_head", "voice_converter"):
            for entry in inventory[capability]:
                if entry["name"] in ("birefnet", "segformer", "sam2", "wav2lip", "openvoice"):
                    print(f"  {capability}/{entry['name']}: {entry['reason']}")
        print(f"  job engines: {last[case]['job'].result.get('engines')}")
    for svc in services.values():
        svc.queue.stop_consumer()
    hang_sock.close()


if __name__ == "__main__":
    main()
