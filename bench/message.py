"""The one-click message, end to end, on this machine with all local defaults.

    /work/main/.venv/bin/python bench/message.py [--quick] [--messages 4] [--workers 1,2,4]

Measures:
  * wall time from submit to ``completed`` for a ~10 s Japanese message (a ~1 MP photo,
    ~40 characters, the default built-in voice, BGM), first run (engines load) and warm runs,
    and each stage's time from ``services.queue.stages``;
  * the same with a voice profile (made here from Kokoro clips pushed through Praat
    "Change gender", i.e. a voice that is not a built-in one) and at 720x1280 (9:16);
  * throughput, messages per minute, with 1, 2 and 4 worker threads;
  * the longest gap between progress reports inside each stage;
  * peak RSS of this process (the app: API, queue and workers in one process).

Jobs go in through ``app.usecases.messages.submit_message`` (what the REST route and the UI call)
onto a SQLite queue with in-process workers, as ``launch.py`` runs them.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from app.config import load_settings  # noqa: E402
from app.services import Services, build_services  # noqa: E402
from app.usecases.messages import submit_message  # noqa: E402
from pipelines.message.chain import STAGES  # noqa: E402

OUT = ROOT / "bench" / "out" / "message"
PORTRAIT = ROOT / "tests" / "fixtures" / "data" / "portrait_glasses.jpg"
TEXT = "お誕生日おめでとうございます！素敵な一年になりますように。これからもよろしくね。"
ENROL = (
    "今日はとても良い天気ですね。駅前の公園まで散歩に行きましょう。",
    "明日の会議は午前十時から始まります。資料を準備しておいてください。",
    "週末は家族と一緒に海へ出かける予定です。とても楽しみにしています。",
)
STAGE_NAMES = [st.name for st in STAGES]


def photo_1mp() -> bytes:
    """The test portrait upscaled to about one megapixel (JPEG, as a phone would send)."""
    import io

    image = Image.open(PORTRAIT).convert("RGB")
    scale = (1_000_000 / (image.width * image.height)) ** 0.5
    size = (round(image.width * scale), round(image.height * scale))
    buffer = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=92)
    print(f"photo: {size[0]}x{size[1]} = {size[0] * size[1] / 1e6:.2f} MP, "
          f"{len(buffer.getvalue()) / 1e3:.0f} kB; text: {len(TEXT)} characters")
    return buffer.getvalue()


class ProgressGaps:
    """Wraps the queue's stage-progress hook to record when each stage reported."""

    def __init__(self, services: Services) -> None:
        self.times: dict[tuple[str, str], list[float]] = defaultdict(list)
        scheduler = services.queue.scheduler
        original = scheduler.stage_progress

        def recording(job_id: str, stage: str, fraction: float, step: str,
                      token: str | None) -> None:
            self.times[(job_id, stage)].append(time.time())
            original(job_id, stage, fraction, step, token)

        scheduler.stage_progress = recording  # type: ignore[method-assign]

    def worst(self, services: Services, job_id: str) -> dict[str, float]:
        """Per stage: the longest stretch without a report, start and end included."""
        out = {}
        for name, record in services.queue.stages(job_id).items():
            if record.get("status") != "done":
                continue
            marks = [record["started_at"], *self.times.get((job_id, name), []),
                     record["finished_at"]]
            out[name] = max(b - a for a, b in zip(marks, marks[1:], strict=False))
        return out


def run_one(services: Services, photo: bytes, **fields: Any) -> dict[str, Any]:
    cpu = time.process_time()
    started = time.perf_counter()
    answer = submit_message(services, photo, {"text": TEXT, "bgm": "celebration", **fields},
                            None)
    job = wait(services, [answer["task_id"]])[0]
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    if job.status != "completed":
        raise SystemExit(f"message failed: {job.error}")
    stages = services.queue.stages(job.id)
    return {"id": job.id, "wall": wall, "job": job, "stages": stages, "cpu": cpu,
            "duration": job.result["duration"], "load": os.getloadavg()[0]}


def wait(services: Services, ids: list[str], timeout: float = 1800) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [services.jobs.get(i) for i in ids]
        if all(j.final for j in jobs):
            return jobs
        time.sleep(0.05)
    raise TimeoutError(ids)


def make_profile(services: Services) -> str:
    """A voice profile from three clips of a voice that is no built-in one."""
    from app.usecases.voices import voice_kit
    from models.base import SpeechRequest
    from models.voice.matching import MatchParams, apply_match
    from pipelines.media import encode_wav

    kit = voice_kit(services)
    kokoro = next(e for e in kit.tts if e.name == "kokoro")
    clips = []
    for n, text in enumerate(ENROL):
        audio = kokoro.synthesize(SpeechRequest(text, voice="jm_kumo")).audio
        shifted = apply_match(audio, MatchParams(1.12, 190))  # Praat "Change gender"
        clips.append((encode_wav(shifted), f"clip{n}.wav"))
    started = time.perf_counter()
    profile = kit.create_profile(clips, name="bench kumo raised", language="ja")
    print(f"voice profile {profile.id} made in {time.perf_counter() - started:.1f} s "
          f"(3 clips, with calibration)")
    return profile.id


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def stage_row(label: str, run: dict[str, Any], gaps: dict[str, float]) -> list[Any]:
    stages = run["stages"]
    cells: list[Any] = [label, f"{run['wall']:.1f}", f"{run['cpu']:.1f}",
                        f"{run['load']:.1f}", f"{run['duration']:.1f}"]
    for name in STAGE_NAMES:
        record = stages.get(name, {})
        cells.append(f"{record['duration']:.1f} ({gaps[name]:.1f})" if name in gaps else "-")
    return cells


def shares(runs: list[dict[str, Any]]) -> list[list[Any]]:
    """Mean time of each stage over the runs where it ran, and its share of their sum."""
    totals = {}
    for name in STAGE_NAMES:
        times = [r["stages"][name]["duration"] for r in runs
                 if r["stages"].get(name, {}).get("duration")]
        totals[name] = statistics.mean(times) if times else 0.0
    work = sum(totals.values()) or 1.0
    return [[name, f"{totals[name]:.2f}", f"{100 * totals[name] / work:.0f}%",
             f"{st.weight:g}"] for name, st in zip(STAGE_NAMES, STAGES, strict=True)]


def throughput(services: Services, photo: bytes, workers: int, messages: int) -> list[Any]:
    services.queue.stop_consumer()
    services.queue.start_consumer(workers, install_signals=False)
    started = time.perf_counter()
    ids = [submit_message(services, photo, {"text": TEXT, "bgm": "celebration"},
                          None)["task_id"] for _ in range(messages)]
    jobs = wait(services, ids)
    elapsed = time.perf_counter() - started
    done = sum(j.status == "completed" for j in jobs)
    walls = [j.finished_at - j.created_at for j in jobs if j.finished_at]
    return [workers, messages, done, f"{elapsed:.1f}", f"{60 * done / elapsed:.1f}",
            f"{statistics.mean(walls):.1f}"]


class Peak:
    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self.stop.wait(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip throughput")
    parser.add_argument("--messages", type=int, default=4, help="messages per throughput run")
    parser.add_argument("--workers", default="1,2,4", help="worker counts for throughput")
    parser.add_argument("--warm", type=int, default=2, help="warm runs of the default case")
    parser.add_argument("--skip-profile", action="store_true",
                        help="skip the voice-profile case (making the profile takes minutes)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    peak = Peak()
    data = Path(tempfile.mkdtemp(prefix="bench-message-"))
    settings = load_settings(data_dir=data / "data", queue_url=f"sqlite:///{data}/q.sqlite3",
                             workers=2, max_queued=1000)
    services = build_services(settings)
    gaps = ProgressGaps(services)
    services.queue.start_consumer(2, install_signals=False)
    photo = photo_1mp()
    rows, defaults = [], []

    cold = run_one(services, photo)
    rows.append(stage_row("default, first (engines load)", cold, gaps.worst(services, cold["id"])))
    for n in range(args.warm):
        run = run_one(services, photo)
        defaults.append(run)
        rows.append(stage_row(f"default, warm #{n + 1}", run, gaps.worst(services, run["id"])))
    run = run_one(services, photo, subtitles=True)
    defaults.append(run)
    rows.append(stage_row("default + subtitles", run, gaps.worst(services, run["id"])))
    if not args.skip_profile:
        profile = make_profile(services)
        run = run_one(services, photo, voice=profile)
        rows.append(stage_row("voice profile (first use)", run,
                              gaps.worst(services, run["id"])))
        run = run_one(services, photo, voice=profile)
        rows.append(stage_row("voice profile, warm", run, gaps.worst(services, run["id"])))
    tall = run_one(services, photo, size="720x1280")
    rows.append(stage_row("720x1280 (9:16)", tall, gaps.worst(services, tall["id"])))
    engines = defaults[-1]["job"].result["engines"]
    table("End to end, seconds (2 worker threads). cpu: process CPU seconds; load: 1-min load "
          "average of the machine. Stage columns: the stage's own time (longest gap between "
          "its progress reports); image runs beside voice->prosody->bgm",
          ["case", "wall", "cpu", "load", "video s", *STAGE_NAMES], rows)
    print(f"engines: {engines}")
    table("Stage shares of the work (warm default runs)",
          ["stage", "mean s", "share", "weight now"], shares(defaults))

    if not args.quick:
        rows = [throughput(services, photo, int(w), args.messages)
                for w in args.workers.split(",")]
        table(f"Throughput ({args.messages} messages submitted at once, default case)",
              ["workers", "messages", "completed", "elapsed s", "msg/min", "mean wall s"],
              rows)
    services.queue.stop_consumer()
    peak.stop.set()
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of the app process: {peak.peak / 2**20:.0f} MB sampled, "
          f"{ru:.0f} MB ru_maxrss")
    services.close()


if __name__ == "__main__":
    main()
