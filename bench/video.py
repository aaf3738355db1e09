"""Benchmark of the built-in talking-head renderer.

    /work/main/.venv/bin/python bench/video.py

Prints: render speed (incl. H.264 encoding) at 512x512 and 720x1280 as a ratio to real
time (25 fps); lip-sync metrics measured independently on the rendered frames with
MediaPipe face mesh (inner-lip gap / mouth width): correlation with the speech envelope and
the share of M/B/P frames with closed lips, for the audio-only path and the phoneme path;
and writes a contact sheet of frames across a Japanese sentence to bench/out/.
Test speech: pyopenjtalk (HTS voice "mei"); phoneme timing from cumulative syntheses of
the full-context label prefixes (each label fixes its own duration).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.baseline import baseline_module  # noqa: E402
from models.base import Audio, RenderRequest, Speech, Timing  # noqa: E402
from models.talking_head.face_mesh import detect_landmarks  # noqa: E402
from models.talking_head.landmark import LandmarkHead, Performance, write_performance  # noqa: E402
from models.talking_head.mp4 import Mp4Writer  # noqa: E402
from pipelines.video.subtitles import font_path  # noqa: E402

OUT = ROOT / "bench" / "out"
PORTRAIT = ROOT / "tests" / "fixtures" / "data" / "portrait_glasses.jpg"
SENTENCE = "みなさん、こんばんは。ぼくは毎晩、パンとマフィンを食べます。"
BILABIAL = {"m", "my", "b", "by", "p", "py"}


def openjtalk_speech(text: str) -> Speech:
    import pyopenjtalk

    labels = pyopenjtalk.extract_fullcontext(text, use_sudachi_kanji_yomi=False)
    wav, rate = pyopenjtalk.synthesize(labels)
    ends = []
    for k in range(1, len(labels) + 1):
        part, _ = pyopenjtalk.synthesize(labels[:k])
        ends.append(len(part) / rate)
    phonemes = []
    start = 0.0
    for label, end in zip(labels, ends, strict=True):
        symbol = label.split("-", 1)[1].split("+", 1)[0]
        if symbol not in ("sil", "pau"):
            phonemes.append(Timing(start, end, symbol))
        start = end
    audio = Audio((np.asarray(wav) / 32768.0).astype(np.float32), int(rate))
    return Speech(audio, phonemes=tuple(phonemes))


def speed(engine: LandmarkHead, portrait: Image.Image, speech: Speech, size: tuple[int, int]
          ) -> tuple[float, float, float, int]:
    """Real-time ratios: wall clock, and CPU (this process + ffmpeg: the work, which does
    not move with other load on a shared machine), frames-only fps, and the file size."""
    import resource

    out = OUT / f"speed_{size[0]}x{size[1]}.mp4"
    request = RenderRequest(portrait, Speech(speech.audio), size=size, output=out)
    engine.perform(request)  # warm: landmarks cached, as for a preview-then-render
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time()
    started = time.perf_counter()
    engine.render(request)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu + (after.ru_utime + after.ru_stime
                                       - children.ru_utime - children.ru_stime)
    perf = engine.perform(request)
    t0 = time.perf_counter()
    for _ in perf.iter_frames():
        pass
    frames_only = perf.frames / (time.perf_counter() - t0)
    return speech.audio.duration / wall, speech.audio.duration / cpu, frames_only, out.stat().st_size


def lipsync(engine: LandmarkHead, portrait: Image.Image, speech: Speech, use_phonemes: bool
            ) -> tuple[float, float, float, list[np.ndarray], Performance]:
    s = speech if use_phonemes else Speech(speech.audio)
    perf = engine.perform(RenderRequest(portrait, s, size=(512, 512)))
    frames = [f.copy() for f in perf.iter_frames()]
    landmarks = [detect_landmarks(f) for f in frames]
    gaps = np.array([np.linalg.norm(p[14] - p[13]) / np.linalg.norm(p[291] - p[61])
                     for p in landmarks])
    env = perf.mouth.envelope
    corr = float(np.corrcoef(gaps, env)[0, 1])
    times = (np.arange(len(frames)) + 0.5) / 25
    bil = np.zeros(len(frames), bool)
    other = np.zeros(len(frames), bool)  # other consonants: lips should not close there
    for ph in speech.phonemes:
        mid = (ph.start + ph.end) / 2
        if ph.text in BILABIAL:
            bil[int(np.argmin(np.abs(times - mid)))] = True
        elif ph.text not in ("a", "i", "u", "e", "o", "A", "I", "U", "E", "O", "N", "cl"):
            other[int(np.argmin(np.abs(times - mid)))] = True
    other &= ~bil
    closed_share = float(np.mean(gaps[bil] < 0.05)) if bil.any() else float("nan")
    false_share = float(np.mean(gaps[other] < 0.05)) if other.any() else float("nan")
    return corr, closed_share, false_share, frames, perf


def contact_sheet(frames: list[np.ndarray], speech: Speech, path: Path) -> None:
    font = ImageFont.truetype(font_path(), 18)
    picks = np.linspace(0, len(frames) - 1, 24).astype(int)
    tiles = []
    for i in picks:
        t = (i + 0.5) / 25
        ph = next((p.text for p in speech.phonemes if p.start <= t < p.end), "·")
        tile = Image.fromarray(frames[i][150:406, 128:384]).resize((192, 192))
        d = ImageDraw.Draw(tile)
        d.rectangle((0, 0, 191, 24), fill=(0, 0, 0))
        d.text((4, 1), f"{t:4.2f}s  {ph}", font=font, fill=(255, 255, 255))
        tiles.append(tile)
    sheet = Image.new("RGB", (192 * 8, 192 * 3 + 30), (20, 20, 20))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % 8) * 192, 30 + (k // 8) * 192))
    ImageDraw.Draw(sheet).text((6, 4), SENTENCE, font=font, fill=(255, 255, 255))
    sheet.save(path)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    portrait = Image.open(PORTRAIT).convert("RGB")
    speech = openjtalk_speech(SENTENCE)
    engine = LandmarkHead()
    print(f"speech: {speech.audio.duration:.2f} s, {len(speech.phonemes)} phonemes "
          f"(pyopenjtalk); portrait: {PORTRAIT.name}")
    import os

    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("\n| size | code | render incl. encode, wall (x real time) | CPU (x real time: "
          "video s / render+ffmpeg CPU s) | frames only (fps) | MP4 size |")
    print("|---|---|---|---|---|---|")
    old_mp4 = baseline_module("models/talking_head/mp4.py", was=["models/mp4.py"])
    import models.talking_head.landmark as head_module

    for size in ((512, 512), (720, 1280)):
        for rnd in range(2):  # interleaved twice: the machine's load moves between runs
            for label, writer in (("main", old_mp4.Mp4Writer if old_mp4 else None),
                                  ("this tree", Mp4Writer)):
                if writer is None:
                    continue
                with mock.patch.object(head_module, "Mp4Writer", writer):
                    ratio, cpu_ratio, fps, size_b = speed(engine, portrait, speech, size)
                print(f"| {size[0]}x{size[1]} | {label} (run {rnd + 1}) | {ratio:.2f}x | "
                      f"{cpu_ratio:.2f}x | {fps:.0f} | {size_b / 1e3:.0f} kB |")
    print("\n| mouth driven by | corr(mouth gap, envelope) | M/B/P frames with closed lips | "
          "other consonants with closed lips |")
    print("|---|---|---|---|")
    rendered: dict[bool, tuple[list[np.ndarray], Performance]] = {}
    for use in (False, True):
        corr, closed, false, frames, perf = lipsync(engine, portrait, speech, use)
        print(f"| {'phoneme timing' if use else 'audio only'} | {corr:.2f} | {closed:.0%} | "
              f"{false:.0%} |")
        rendered[use] = frames, perf
    sheet_frames, audio_perf = rendered[False]  # the sheet and the file show the audio-only path
    contact_sheet(sheet_frames, speech, OUT / "contact_sheet.png")
    request = RenderRequest(portrait, Speech(speech.audio), output=OUT / "sentence.mp4")
    write_performance(audio_perf, request)
    print(f"\nwrote {OUT / 'contact_sheet.png'} and {OUT / 'sentence.mp4'}")


if __name__ == "__main__":
    main()
