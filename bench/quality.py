"""The finished message, looked at and listened to: the quality harness over every photo.

    /work/main/.venv/bin/python bench/quality.py [--label after] [--size 512x512] [--only NAME]

Each photo goes through the real one-click message (``submit_message``, the path of the REST
route and the UI, on an in-process queue with every local default engine), and the harness
(:mod:`quality`) measures the MP4 alone: face found, head margins, lip gap vs voice envelope
(Pearson r, lag), frozen stretches, loudness, true peak, voice, music, durations, subtitles.
Photos: every JPEG in ``../shared/data/photos`` (real public-domain portraits), the test
portraits (``tests/fixtures/data``, ``tests/fixtures/data``), and two made from them to stress the
framing: a close crop that cuts the top of the hair and a full-length-like photo whose face
is small in a large canvas. Writes the table to ``bench/out/quality/<label>.txt`` and one
contact sheet and the MP4 per photo to ``bench/out/quality/<label>/``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from app.config import load_settings  # noqa: E402
from app.services import build_services  # noqa: E402
from app.usecases.messages import submit_message  # noqa: E402
from quality import contact_sheet, measure, table  # noqa: E402

SHARED = ROOT.parent.parent / "shared" / "data" / "photos"
TEST_PORTRAITS = [ROOT / "tests" / "fixtures" / "data" / "portrait_glasses.jpg",
                  ROOT / "tests" / "fixtures" / "data" / "grace_hopper.jpg"]
TEXT = "お誕生日おめでとう！素敵な一年になりますように。"
OUT = ROOT / "bench" / "out" / "quality"


def shared_photos() -> list[Path]:
    for base in (SHARED, Path("/work/shared/data/photos")):
        if base.is_dir():
            return sorted(base.glob("*.jpg"))
    return []


def close_crop(path: Path) -> Image.Image:
    """The photo cropped tight: the top of the hair cut off, the face near the top edge."""
    import numpy as np

    from models.talking_head.face_mesh import detect_landmarks

    image = Image.open(path).convert("RGB")
    points = detect_landmarks(np.asarray(image))
    top = int(points[10, 1] - 0.05 * (points[152, 1] - points[10, 1]))
    return image.crop((0, max(top, 0), image.width, image.height))


def full_length(path: Path) -> Image.Image:
    """The photo small in a large canvas of its own blurred edge colours (a small face)."""
    from PIL import ImageFilter

    image = Image.open(path).convert("RGB")
    w, h = image.size
    canvas = image.resize((w * 4, h * 4)).filter(ImageFilter.GaussianBlur(40))
    canvas.paste(image, (int(1.5 * w), int(0.4 * h)))
    return canvas


def photos() -> list[tuple[str, Image.Image]]:
    items = [(p.stem, Image.open(p).convert("RGB")) for p in shared_photos() + TEST_PORTRAITS]
    teeth = next((p for p in shared_photos() if "teeth" in p.name), TEST_PORTRAITS[0])
    items.append(("close_crop_" + teeth.stem, close_crop(teeth)))
    items.append(("small_face_" + TEST_PORTRAITS[0].stem, full_length(TEST_PORTRAITS[0])))
    return items


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", default="now")
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--only", default="", help="run only photos whose name contains this")
    parser.add_argument("--bgm", default="celebration")
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--measure-only", action="store_true",
                        help="measure the MP4s a previous run of this label left again")
    args = parser.parse_args()
    out = OUT / args.label
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        os.environ.setdefault("STUDIO_DATA_DIR", tmp)
        settings = load_settings()
        services = build_services(settings, immediate=True)
        reports, names = [], []
        try:
            for name, image in photos():
                if args.only and args.only not in name:
                    continue
                if args.measure_only:
                    video = out / f"{name}.mp4"
                    srt_path = video.with_suffix(".srt")
                    report = measure(video, text=args.text, music=args.bgm not in ("none", ""),
                                     subtitles=srt_path if srt_path.exists() else None)
                    contact_sheet(video, out / f"{name}.png", report,
                                  title=f"{name} ({args.label})")
                    report.media = None
                    reports.append(report)
                    names.append(name)
                    continue
                started = time.perf_counter()
                answer = submit_message(services, jpeg(image), {
                    "text": args.text, "bgm": args.bgm, "size": args.size, "subtitles": "true"}, None)
                job = services.jobs.get(answer["task_id"])
                if job.status != "completed" or job.result is None:
                    print(f"{name}: {job.status} {job.error}")
                    continue
                video = out / f"{name}.mp4"
                video.write_bytes(services.storage.get(job.result["video_key"]))
                srt = services.storage.get(job.result["srt_key"]).decode("utf-8")
                video.with_suffix(".srt").write_text(srt, encoding="utf-8")
                report = measure(video, text=args.text, music=args.bgm not in ("none", ""),
                                 subtitles=srt)
                contact_sheet(video, out / f"{name}.png", report, title=f"{name} ({args.label})")
                report.media = None
                reports.append(report)
                names.append(name)
                print(f"{name}: rendered and measured in {time.perf_counter() - started:.1f} s",
                      flush=True)
        finally:
            services.close()
    text = table(reports, names)
    print(f"\nquality harness, {args.size}, label {args.label!r} (contact sheets in {out})")
    print(text)
    (OUT / f"{args.label}.txt").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
