"""Soak: a day of work squeezed into an hour, with workers dying under it (not in CI).

    nice -n 19 /work/main/.venv/bin/python bench/soak.py [--messages 300] [--duration 3600]
        [--clients 5] [--kill-every 120] [--workers 2] [--rss-from 50] [--bgm-every 2]

Real processes, as a scaled-out deployment runs them: a ``redis-server`` (queue and job
records), moto's S3 server (storage), the studio (``launch.py`` with no workers of its own)
and ``--workers`` ``huey_consumer`` processes. ``--clients`` client threads submit
``--messages`` messages over REST, spread evenly over ``--duration`` seconds; every
``--kill-every`` seconds one worker (in turn) is SIGKILLed and started again at once.

It checks and prints:
  * none lost or stuck: every accepted message ends ``completed`` (failures listed with their
    codes), nothing is left queued or processing, no render scratch folder of a soak worker
    is left in the temp folder;
  * every MP4 playable: downloaded from its (presigned S3) URL, a video and an audio stream,
    and decoded to the end by ffmpeg without an error;
  * RSS of each process, sampled every 5 s: at the ``--rss-from``-th finished message and at
    the end (the app, Redis and moto should be flat: < +10 %); each worker life's peak;
  * message time (submitted -> seen completed, polled every 2 s): p50 / p95 / max, and p95
    of the first and second half of the messages (stable: about the same).

The JSON of everything measured goes to ``bench/out/soak/``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "soak"
PORTRAIT = ROOT / "tests" / "fixtures" / "data" / "portrait_glasses.jpg"
TEXTS = ("おめでとう！", "ありがとう、また会おうね。", "Happy birthday!", "元気でね。")
AWS = {"AWS_ACCESS_KEY_ID": "soak", "AWS_SECRET_ACCESS_KEY": "soak",
       "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up in {timeout:.0f} s")


@dataclass
class Proc:
    role: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    life: int = 0
    proc: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.life += 1
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=handle,
                                     stderr=subprocess.STDOUT)
        handle.close()
        self.pids.append(self.proc.pid)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Message:
    index: int
    client: int
    submitted: float = 0.0
    task_id: str | None = None
    refused: str | None = None
    status: str = "queued"
    done_at: float | None = None
    error: str | None = None
    video_url: str | None = None
    playable: bool | None = None
    play_note: str = ""
    attempts: int | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.done_at is None else self.done_at - self.submitted


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="studio-soak-"))
        self.procs: dict[str, Proc] = {}
        self.messages = [Message(i, i % args.clients) for i in range(args.messages)]
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.samples: list[dict[str, Any]] = []
        self.kills: list[dict[str, Any]] = []
        self.started = 0.0
        self.url = ""
        self.s3_url = ""

    # ------------------------------------------------------------------ processes

    def up(self) -> None:
        redis_port, s3_port, app_port = free_port(), free_port(), free_port()
        redis_bin = shutil.which("redis-server")
        if redis_bin is None:
            raise SystemExit("redis-server is not installed")
        moto_bin = str(Path(sys.executable).with_name("moto_server"))
        self.add("redis", [redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1",
                           "--save", "", "--appendonly", "no", "--dir", str(self.work)], {})
        self.add("moto", [moto_bin, "-H", "127.0.0.1", "-p", str(s3_port)], {})
        import redis

        wait_for(lambda: redis.Redis(port=redis_port).ping(), 30, "redis-server")
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{s3_port}/", timeout=2).status_code < 500,
                 60, "moto")
        self.s3_url = f"http://127.0.0.1:{s3_port}"
        studio = {
            "STUDIO_QUEUE_URL": f"redis://127.0.0.1:{redis_port}/0", "STUDIO_STORAGE": "s3",
            "STUDIO_S3_BUCKET": "soak", "STUDIO_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
            "STUDIO_S3_CREATE_BUCKET": "true", "STUDIO_WORKERS": "0",
            "STUDIO_RATE_LIMIT_PER_MINUTE": "0", "STUDIO_MAX_QUEUED": "1000",
            "STUDIO_OPEN_BROWSER": "false", "STUDIO_LOG_FORMAT": "json",
            "STUDIO_LOG_LEVEL": "WARNING", **AWS}
        self.add("app", [sys.executable, "launch.py", "--no-browser"], {
            **studio, "STUDIO_HOST": "127.0.0.1", "STUDIO_PORT": str(app_port),
            "STUDIO_DATA_DIR": str(self.work / "app")})
        self.url = f"http://127.0.0.1:{app_port}"
        wait_for(lambda: httpx.get(f"{self.url}/health", timeout=5).status_code == 200, 300,
                 "the studio")
        for n in range(1, self.args.workers + 1):
            self.add(f"worker{n}", [sys.executable, "-m", "huey.bin.huey_consumer",
                                    "app.worker.huey", "-k", "thread", "-w",
                                    str(self.args.threads), "-m", "1"],
                     {**studio, "STUDIO_DATA_DIR": str(self.work / f"worker{n}")})

    def add(self, role: str, argv: list[str], env: dict[str, str]) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
        proc = Proc(role, argv, {**clean, "PYTHONPATH": str(ROOT), **env},
                    self.work / f"{role}.log")
        proc.start()
        self.procs[role] = proc

    def down(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()

    # -------------------------------------------------------------------- threads

    def client(self, number: int) -> None:
        photo = PORTRAIT.read_bytes()
        interval = self.args.duration / max(1, self.args.messages)
        with httpx.Client(base_url=self.url, timeout=120) as http:
            for message in self.messages[number::self.args.clients]:
                at = self.started + message.index * interval
                if self.stop.wait(max(0.0, at - time.time())):
                    return
                fields = {"text": TEXTS[message.index % len(TEXTS)],
                          "bgm_type": "celebration" if message.index % self.args.bgm_every == 0
                          else "none"}
                fields["language"] = "en" if fields["text"].isascii() else "ja"
                while True:
                    message.submitted = time.time()
                    answer = http.post("/api/video/generate", data=fields,
                                       files={"image": ("me.jpg", photo, "image/jpeg")})
                    body = answer.json()
                    if answer.status_code == 202:
                        message.task_id = body["data"]["task_id"]
                        break
                    retry = (body.get("error") or {}).get("retry_after")
                    if answer.status_code in (429, 503) and retry:
                        time.sleep(float(retry))
                        continue
                    message.refused = f"{answer.status_code} {body.get('error')}"
                    message.status = "refused"
                    break

    def poller(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.stop.is_set():
                for message in self.messages:
                    if message.task_id is None or message.done_at is not None:
                        continue
                    try:
                        data = http.get(f"/api/video/status/{message.task_id}").json()["data"]
                    except (httpx.HTTPError, KeyError, ValueError):
                        continue  # the app is busy: next round
                    message.status = data["status"]
                    if data["status"] in ("completed", "failed", "cancelled"):
                        message.done_at = time.time()
                        message.video_url = data.get("video_url")
                        error = data.get("error") or {}
                        message.error = error.get("code") if isinstance(error, dict) else None
                        try:
                            job = http.get(f"/api/jobs/{message.task_id}").json()["data"]
                            message.attempts = int(job.get("attempts") or 0)
                        except (httpx.HTTPError, KeyError, ValueError, TypeError):
                            pass
                        if message.video_url:
                            self.check_video(message, http)
                self.stop.wait(2.0)

    def check_video(self, message: Message, http: httpx.Client) -> None:
        assert message.video_url is not None
        url = message.video_url if message.video_url.startswith("http") \
            else f"{self.url}{message.video_url}"
        target = self.work / "videos" / f"{message.index}.mp4"
        target.parent.mkdir(exist_ok=True)
        try:
            target.write_bytes(http.get(url).raise_for_status().content)
            probe = subprocess.run(
                ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type:format=duration",
                 "-of", "json", str(target)], capture_output=True, text=True, timeout=60)
            info = json.loads(probe.stdout or "{}")
            kinds = sorted(s.get("codec_type") for s in info.get("streams", []))
            duration = float((info.get("format") or {}).get("duration") or 0)
            decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(target), "-f", "null",
                                     "-"], capture_output=True, text=True, timeout=120)
            message.playable = (probe.returncode == 0 and kinds == ["audio", "video"]
                                and duration > 0.5 and decode.returncode == 0
                                and not decode.stderr.strip())
            message.play_note = f"{'+'.join(kinds)} {duration:.1f} s {decode.stderr[:100]}"
        except Exception as exc:  # recorded, judged in the table
            message.playable, message.play_note = False, f"{type(exc).__name__}: {exc}"
        finally:
            target.unlink(missing_ok=True)

    def killer(self) -> None:
        slots = itertools.cycle(sorted(r for r in self.procs if r.startswith("worker")))
        while not self.stop.wait(self.args.kill_every):
            role = next(slots)
            proc = self.procs[role]
            assert proc.proc is not None
            pid = proc.proc.pid
            held = self.running(pid)
            proc.kill()
            proc.start()
            with self.lock:
                self.kills.append({"t": round(time.time() - self.started, 1), "worker": role,
                                   "pid": pid, "held": held,
                                   "finished_so_far": self.finished()})

    def running(self, pid: int) -> list[str]:
        """The stages a worker process holds, as /health shows them."""
        try:
            shown = httpx.get(f"{self.url}/health", timeout=10).json()["data"]["queue"]
        except (httpx.HTTPError, KeyError, ValueError):
            return []
        for process in shown["workers"]["processes"]:
            if str(process.get("worker", "")).endswith(f":{pid}"):
                return [f"{r['job_id'][:8]}:{r['stage']}" for r in process.get("running", [])]
        return []

    def stored_bytes(self) -> int | None:
        """What the S3 bucket holds: moto keeps every object in its own memory, so its RSS
        grows by what the studio stores (compare the two before calling it a leak)."""
        try:
            import boto3

            client = boto3.client("s3", endpoint_url=self.s3_url, **{
                "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
                "region_name": AWS["AWS_DEFAULT_REGION"]})
            total = 0
            for page in client.get_paginator("list_objects_v2").paginate(Bucket="soak"):
                total += sum(int(o["Size"]) for o in page.get("Contents", []))
            return total
        except Exception:  # the bucket is not there yet
            return None

    def sampler(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(5.0)

    def sample(self) -> None:
        row: dict[str, Any] = {"t": round(time.time() - self.started, 1),
                               "finished": self.finished(), "s3": self.stored_bytes()}
        for role, proc in self.procs.items():
            try:
                assert proc.proc is not None
                row[role] = (proc.life, psutil.Process(proc.proc.pid).memory_info().rss)
            except (psutil.Error, AssertionError):
                pass
        self.samples.append(row)

    def finished(self) -> int:
        return sum(1 for m in self.messages if m.done_at is not None)

    # ------------------------------------------------------------------------ run

    def run(self) -> dict[str, Any]:
        self.up()
        self.started = time.time()
        threads = [threading.Thread(target=self.client, args=(c,), daemon=True)
                   for c in range(self.args.clients)]
        helpers = [threading.Thread(target=f, daemon=True)
                   for f in (self.poller, self.killer, self.sampler)]
        for thread in threads + helpers:
            thread.start()
        for thread in threads:
            thread.join()
        submitted_by = time.time() - self.started
        deadline = time.time() + self.args.grace
        while time.time() < deadline and any(
                m.task_id and m.done_at is None for m in self.messages):
            time.sleep(2.0)
        self.stop.set()
        for thread in helpers:
            thread.join(timeout=60)
        self.sample()  # the end, after the last message
        ended = time.time() - self.started
        leftovers = self.leftovers()
        open_jobs = self.open_jobs()
        self.down()
        return {"submitted_by_s": round(submitted_by), "ended_s": round(ended),
                "leftover_scratch": leftovers, "open_jobs": open_jobs}

    def open_jobs(self) -> dict[str, int]:
        counts = httpx.get(f"{self.url}/api/jobs", params={"limit": 1},
                           timeout=60).json()["data"]["counts"]
        return {k: counts.get(k, 0) for k in ("queued", "processing")}

    def leftovers(self) -> list[str]:
        """Render scratch folders owned by a soak worker (any life) still in the temp
        folder (other people's live renders on a shared machine are not counted)."""
        ours = {str(pid) for p in self.procs.values() for pid in p.pids}
        left = []
        for folder in Path(tempfile.gettempdir()).glob("studio-*-*"):
            try:
                owner = (folder / ".owner").read_text().strip()
            except OSError:
                continue
            if owner in ours:
                left.append(folder.name)
        return left


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def report(soak: Soak, outcome: dict[str, Any]) -> str:
    args, messages = soak.args, soak.messages
    accepted = [m for m in messages if m.task_id]
    completed = [m for m in accepted if m.status == "completed"]
    failed = [m for m in accepted if m.status in ("failed", "cancelled")]
    stuck = [m for m in accepted if m.done_at is None]
    playable = [m for m in completed if m.playable]
    times = [m.seconds for m in completed if m.seconds is not None]
    half = len(completed) // 2
    by_order = sorted(completed, key=lambda m: m.index)
    first = [m.seconds for m in by_order[:half] if m.seconds is not None]
    second = [m.seconds for m in by_order[half:] if m.seconds is not None]
    lines = [
        f"soak: {args.messages} messages by {args.clients} clients over {args.duration:.0f} s, "
        f"{args.workers} workers x {args.threads} thread, one SIGKILLed + restarted every "
        f"{args.kill_every:.0f} s ({len(soak.kills)} kills); all submitted by "
        f"{outcome['submitted_by_s']} s, ended at {outcome['ended_s']} s",
        "",
        f"{'accepted':28} {len(accepted):>6} of {args.messages}"
        + (f"  (refused: {sorted({m.refused for m in messages if m.refused})})"
           if len(accepted) < args.messages else ""),
        f"{'completed':28} {len(completed):>6}",
        f"{'failed':28} {len(failed):>6}  {sorted({str(m.error) for m in failed})}",
        f"{'lost or stuck (not final)':28} {len(stuck):>6}",
        f"{'run again after a kill':28} {sum(1 for m in accepted if (m.attempts or 0) > 1):>6}"
        f"  (attempts > 1)",
        f"{'left queued/processing':28} {sum(outcome['open_jobs'].values()):>6}",
        f"{'scratch folders left':28} {len(outcome['leftover_scratch']):>6}",
        f"{'MP4 playable':28} {len(playable):>6} of {len(completed)}",
        "",
        f"message time (s)      p50 {percentile(times, .5):7.1f}   p95 {percentile(times, .95):7.1f}"
        f"   max {max(times, default=math.nan):7.1f}",
        f"p95 first half        {percentile(first, .95):7.1f}   second half "
        f"{percentile(second, .95):7.1f}",
        "",
        f"RSS (MB)     at #{args.rss_from:<4} finished      end      max   growth",
    ]
    start_row = next((s for s in soak.samples if s["finished"] >= args.rss_from), None)
    for role in ("app", "redis", "moto"):
        series = [s[role][1] for s in soak.samples if role in s]
        if not series or start_row is None or role not in start_row:
            lines.append(f"{role:12} (no sample from #{args.rss_from})")
            continue
        begin, end = start_row[role][1], series[-1]
        lines.append(f"{role:12} {begin / 2**20:14.0f} {end / 2**20:8.0f} "
                     f"{max(series) / 2**20:8.0f} {100 * (end - begin) / begin:+7.1f} %")
    stored = [s["s3"] for s in soak.samples if s.get("s3") is not None]
    if stored and start_row is not None and start_row.get("s3") is not None:
        lines.append(f"{'S3 data held':12} {start_row['s3'] / 2**20:14.0f} "
                     f"{stored[-1] / 2**20:8.0f} {max(stored) / 2**20:8.0f}   (moto holds it "
                     "in memory)")
    for role in sorted(r for r in soak.procs if r.startswith("worker")):
        peaks: dict[int, int] = {}
        for s in soak.samples:
            if role in s:
                life, rss = s[role]
                peaks[life] = max(peaks.get(life, 0), rss)
        shown = ", ".join(f"{v / 2**20:.0f}" for _, v in sorted(peaks.items()))
        lines.append(f"{role:12} peak per life (MB): {shown}")
    lines.append("")
    lines.append("kills (worker@time: stages it held): " + "; ".join(
        f"{k['worker']}@{k['t']:.0f}s: {','.join(k['held']) or '-'}" for k in soak.kills))
    bad = [m for m in completed if not m.playable]
    for m in bad[:5]:
        lines.append(f"not playable: #{m.index} {m.play_note}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--duration", type=float, default=3600.0,
                        help="seconds over which the messages are submitted")
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--kill-every", type=float, default=120.0)
    parser.add_argument("--rss-from", type=int, default=50,
                        help="RSS growth is measured from this finished message on")
    parser.add_argument("--bgm-every", type=int, default=2,
                        help="every n-th message has music (the others none)")
    parser.add_argument("--grace", type=float, default=1800.0,
                        help="seconds to wait after the last submission for the queue to drain")
    args = parser.parse_args()

    soak = Soak(args)
    try:
        outcome = soak.run()
    finally:
        soak.down()
    table = report(soak, outcome)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"soak-{stamp}.txt").write_text(table + "\n")
    (OUT / f"soak-{stamp}.json").write_text(json.dumps({
        "args": vars(args), "outcome": outcome, "kills": soak.kills,
        "messages": [m.__dict__ | {"seconds": m.seconds} for m in soak.messages],
        "samples": soak.samples}, default=str))
    print(f"\nlogs and data: {soak.work}; table: {OUT / f'soak-{stamp}.txt'}")
    if sum(outcome["open_jobs"].values()) or any(m.task_id and m.done_at is None
                                                  for m in soak.messages):
        sys.exit(1)


if __name__ == "__main__":
    main()
