"""Does the face speak? Lip sync of real messages at every size, judged from the MP4 alone.

    /work/main/.venv/bin/python bench/lipsync.py [--label now] [--sizes 512x512,720x1280,1280x720]
        [--only NAME] [--rerender]

Each portrait (every JPEG in ``../shared/data/photos`` and the one in ``tests/fixtures/data``)
goes through the real one-click message (``submit_message``: the path of the REST route and
the UI, every local default engine, default settings but the text), at each size; the
harness (:mod:`quality`) then judges the MP4 alone: THEval's lip-sync score and its ``m``
(over the speech frames Silero VAD finds), Pearson r and the best offset of lips vs loudness
over those frames, the head's margins (the forehead point, and the crown estimated above it)
and whether the photo had room above the head at all. Goals (issue 26): every THEval score
>= 0.95, mean >= 0.97; mean r >= 0.40; offset between -120 and +40 ms; the crown inside the
frame whenever the photo shows it. A contact sheet per message lands in
``bench/out/lipsync/<label>/``.

``--rerender`` renders the video stage again from the image, voice and prosody the last run
of the same label kept (the stages' own records), so a change to the renderer is measured in
seconds per message instead of a full message each.

Speed: the built-in renderer's frames per second at 512x512 against real time (25 fps), for
the first portrait's performance, as a ratio in this process (goal >= 4x).

``--reference DIR`` judges the real videos in DIR (``*.mp4`` with their own sound) with the
same harness instead, and renders nothing: what recordings of real people score on the same
measures. THEval itself scores a method by the mean ``m`` over all its videos (its
``Average Mean Difference``, then ``1 - |m - 0.2528| / 0.2528``); the summary gives that
beside the per-video scores. Measured on six HDTF clips (the 8 s, 512x512 clips SadTalker's
repository kept in ``examples/ref_video`` and ``test/examples/source_image``): per video
0.768-0.987, mean 0.913; THEval's own aggregate 0.922; r mean 0.11.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from app.config import load_settings  # noqa: E402
from app.services import Services, build_services  # noqa: E402
from app.usecases.messages import submit_message  # noqa: E402
from models.base import EngineSettings  # noqa: E402
from models.chain import FallbackChain  # noqa: E402
from quality import Report, contact_sheet, measure  # noqa: E402
from quality.measure import CROWN, THEVAL_GOAL, theval_score  # noqa: E402

SHARED = ROOT.parent.parent / "shared" / "data" / "photos"
PORTRAITS = [ROOT / "tests" / "fixtures" / "data" / "grace_hopper.jpg"]
# ~9 s of speech in four phrases: enough for every lip measure to mean something.
TEXT = ("お誕生日おめでとうございます。いつも本当にありがとう。"
        "これからも元気で、楽しい毎日を過ごしてくださいね。また一緒に遊びに行きましょう。")
SIZES = "512x512,720x1280,1280x720"
OUT = ROOT / "bench" / "out" / "lipsync"


def photos() -> list[Path]:
    shared = next((b for b in (SHARED, Path("/work/shared/data/photos")) if b.is_dir()), None)
    return (sorted(shared.glob("*.jpg")) if shared else []) + PORTRAITS


def room_above(path: Path) -> float:
    """How much photo there is above the estimated crown, as a share of the face length
    (negative: the photo cuts the head)."""
    from models.talking_head.face_mesh import detect_landmarks

    points = detect_landmarks(np.asarray(Image.open(path).convert("RGB")))
    length = float(np.linalg.norm(points[10] - points[152]))
    return float(points[10, 1] - CROWN * length) / length


@dataclass
class Row:
    name: str
    size: str
    report: Report
    room: float
    seconds: float


class _Context:
    """What a message stage needs of its job, for ``--rerender`` (a stage run outside the
    queue: storage, engines, progress that goes nowhere)."""

    def __init__(self, services: Services, job_id: str) -> None:
        self.services = services
        self.job_id = job_id
        self.storage = services.storage
        self.engine_settings: EngineSettings = services.engine_settings

    def progress(self, fraction: float, step: str) -> None:
        pass

    def step_done(self, step: str) -> None:
        pass

    def chain(self, capability: str) -> FallbackChain[Any]:
        return self.services.chain(capability)

    def observe_stage(self, stage: str, backend: str | None, seconds: float) -> None:
        pass

    def new_key(self, prefix: str, extension: str) -> str:
        from app.storage import new_key

        return new_key(prefix, extension)

    def others_waiting(self) -> bool:
        return False


def run_message(services: Services, photo: Path, size: str, text: str) -> tuple[bytes, dict]:
    answer = submit_message(services, photo.read_bytes(), {"text": text, "size": size}, None)
    job = services.jobs.get(answer["task_id"])
    if job.status != "completed" or job.result is None:
        raise RuntimeError(f"{photo.name} {size}: {job.status} {job.error}")
    stages = services.jobs.store.load_stages(job.id)
    return services.storage.get(job.result["video_key"]), {"job": job.id, "stages": stages,
                                                          "params": job.params}


def rerender(services: Services, kept: dict) -> bytes:
    from pipelines.message.chain import video_stage
    from pipelines.message.outputs import Finished
    from pipelines.message.request import MessageRequest

    outputs = {k: v["output"] for k, v in kept["stages"].items()
               if k not in ("video", "subtitles") and v.get("output")}
    request = MessageRequest.from_params(kept["params"])
    stage = video_stage.__wrapped__  # type: ignore[attr-defined]
    out = stage(_Context(services, kept["job"]), request, Finished.from_dicts(outputs))
    data: bytes = services.storage.get(out.video_key)
    return data


def speed(services: Services, photo: Path, seconds: float = 6.0) -> tuple[float, float]:
    """(render fps, ratio to real time) of the built-in renderer at 512x512: frames of one
    performance rendered back to back (no encoding), best of two."""
    from models.base import Audio, Speech, SpeechRequest
    from models.talking_head.landmark import LandmarkHead

    tts = services.chain("tts")
    said = tts.run(lambda e: e.synthesize(SpeechRequest(TEXT, language="ja"))).value
    n = int(seconds * said.audio.sample_rate)
    speech = Speech(Audio(said.audio.samples[:n], said.audio.sample_rate),
                    phonemes=tuple(p for p in said.phonemes if p.end <= seconds))
    from models.base import RenderRequest

    head = LandmarkHead()
    performance = head.perform(RenderRequest(image=Image.open(photo).convert("RGB"),
                                             speech=speech, size=(512, 512), fps=25, seed=0,
                                             output=Path(os.devnull)))
    best = math.inf
    for _ in range(2):
        started = time.perf_counter()
        for _frame in performance.iter_frames():
            pass
        best = min(best, time.perf_counter() - started)
    fps = performance.frames / best
    return fps, fps / 25.0


def judged(mp4: Path) -> Row:
    """A real video (its own sound) judged like a message; no photo, so no room above."""
    report = measure(mp4)
    print(f"{mp4.name}: THEval {fmt(report.value('theval'), '.3f')}, "
          f"r {fmt(report.value('lips'), '.2f')}, offset {fmt(report.value('lag'), '+.0f')} ms",
          flush=True)
    report.media = None
    return Row(mp4.stem, "-", report, math.nan, 0.0)


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def table(rows: list[Row]) -> str:
    header = ["portrait", "size", "speech s", "THEval", "m", "r", "offset ms", "crown %",
              "fore %", "room", "head", "failed"]
    lines = []
    for row in rows:
        rep = row.report
        crown = rep.info.get("crown")
        whole = crown is not None and (crown >= 0 or row.room < 0)
        lines.append([row.name, row.size, fmt(rep.info.get("speech"), ".1f"),
                      fmt(rep.value("theval"), ".3f"), fmt(rep.info.get("theval_m"), ".3f"),
                      fmt(rep.value("lips"), ".2f"), fmt(rep.value("lag"), "+.0f"),
                      fmt(crown, ".1f"), fmt(rep.info.get("forehead"), ".1f"),
                      fmt(row.room, ".2f"), "whole" if whole else "CUT",
                      ",".join(rep.failed) or "ok"])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    out = ["  ".join(str(x).ljust(w) if i < 2 else str(x).rjust(w)
                     for i, (x, w) in enumerate(zip(r, widths, strict=True)))
           for r in [header, *lines]]
    scores = [r.report.value("theval") for r in rows]
    rs = [r.report.value("lips") for r in rows]
    lags = [r.report.value("lag") for r in rows]
    good = [s for s in scores if s is not None]
    rgood = [x for x in rs if x is not None]
    lgood = [x for x in lags if x is not None]
    ms = [m for r in rows if (m := r.report.info.get("theval_m")) is not None and math.isfinite(m)]
    aggregate = theval_score(float(np.mean(ms))) if ms else math.nan
    summary = (f"THEval: min {min(good, default=math.nan):.3f}, mean "
               f"{np.mean(good) if good else math.nan:.3f} (goal every >= {THEVAL_GOAL}, mean "
               f">= 0.97), as THEval scores a set (of the mean m) {aggregate:.3f}; r mean {np.mean(rgood) if rgood else math.nan:.2f} (goal >= 0.40); "
               f"offset {min(lgood, default=math.nan):+.0f}..{max(lgood, default=math.nan):+.0f}"
               f" ms (goal -120..+40)")
    return "\n".join([out[0], "-" * len(out[0]), *out[1:], "", summary])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", default="now")
    parser.add_argument("--sizes", default=SIZES)
    parser.add_argument("--only", default="", help="only portraits whose name contains this")
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--rerender", action="store_true",
                        help="render again from the stages the last run of this label kept")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed measure")
    parser.add_argument("--reference", type=Path, default=None,
                        help="judge the real videos (*.mp4) in this folder; render nothing")
    args = parser.parse_args()
    if args.reference is not None:
        text = table([judged(mp4) for mp4 in sorted(args.reference.glob("*.mp4"))])
        print(f"\nreal videos in {args.reference}, judged by the same harness\n{text}")
        return
    out = OUT / args.label
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data"
    data_dir.mkdir(exist_ok=True)
    os.environ["STUDIO_DATA_DIR"] = str(data_dir)
    services = build_services(load_settings(), immediate=True)
    rows: list[Row] = []
    try:
        for photo in photos():
            if args.only and args.only not in photo.stem:
                continue
            room = room_above(photo)
            for size in args.sizes.split(","):
                name = f"{photo.stem}_{size}"
                kept_path = out / f"{name}.json"
                started = time.perf_counter()
                if args.rerender and kept_path.exists():
                    video = rerender(services, json.loads(kept_path.read_text("utf-8")))
                else:
                    video, kept = run_message(services, photo, size, args.text)
                    kept_path.write_text(json.dumps(kept, default=str), encoding="utf-8")
                seconds = time.perf_counter() - started
                mp4 = out / f"{name}.mp4"
                mp4.write_bytes(video)
                report = measure(mp4, text=args.text)
                contact_sheet(mp4, out / f"{name}.png", report, title=f"{name} ({args.label})")
                report.media = None
                rows.append(Row(photo.stem, size, report, room, seconds))
                print(f"{name}: {seconds:.1f} s, THEval {fmt(report.value('theval'), '.3f')}, "
                      f"r {fmt(report.value('lips'), '.2f')}, "
                      f"offset {fmt(report.value('lag'), '+.0f')} ms", flush=True)
        text = table(rows)
        if not args.no_speed and rows:
            fps, ratio = speed(services, next(p for p in photos() if args.only in p.stem))
            text += (f"\nbuilt-in renderer at 512x512: {fps:.0f} frames/s = {ratio:.1f}x real "
                     f"time at 25 fps (goal >= 4x)")
    finally:
        services.close()
    print(f"\nlip sync, label {args.label!r} (contact sheets in {out})")
    print(text)
    (OUT / f"{args.label}.txt").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
