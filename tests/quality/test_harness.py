"""The quality harness sees what a viewer would: a good render passes, and each defect made
from it with ffmpeg (a frozen stretch, silence, a cut head, shifted sound, clipping, a short
sound track, music where none was asked, subtitles outside the speech) fails its measure."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.base import Audio, RenderRequest, Speech
from models.talking_head.landmark import LandmarkHead
from quality import contact_sheet, measure, table
from quality.decode import _ffmpeg
from tests.video.conftest import DATA, tts

pytestmark = pytest.mark.slow
SIZE = (320, 320)


def loud(audio: Audio, lufs: float = -16.0) -> Audio:
    """Speech at ``lufs`` integrated loudness (a message's target), peaks kept below -1 dBTP."""
    import pyloudnorm

    meter = pyloudnorm.Meter(audio.sample_rate)
    gain = 10 ** ((lufs - meter.integrated_loudness(audio.samples.astype(np.float64))) / 20)
    samples = audio.samples * gain
    ceiling = 10 ** (-2.0 / 20)
    samples = ceiling * np.tanh(samples / ceiling)  # a soft limiter
    return Audio(samples.astype(np.float32), audio.sample_rate)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    out = tmp_path_factory.mktemp("quality") / "good.mp4"
    speech = Speech(loud(tts("こんにちは。今日は、みなさんにメッセージをお送りします。")))
    request = RenderRequest(image=Image.open(DATA / "portrait_glasses.jpg").convert("RGB"),
                            speech=speech, size=SIZE, fps=25, seed=1, output=out)
    LandmarkHead().render(request)
    return out


def ffmpeg(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run([_ffmpeg(), "-v", "error", "-y", "-i", str(src), *args, str(dst)],
                   check=True, capture_output=True, timeout=120)
    return dst


def test_good_render_passes(good: Path, tmp_path: Path) -> None:
    report = measure(good, music=False, text="こんにちは。今日は、みなさんにメッセージをお送りします。",
                     subtitles=[(0.2, 1.0)])
    assert report.ok, table([report]) + "\n" + repr({n: c for n, c in report.checks.items()
                                                      if not c.ok})
    assert report.value("face") == 100.0
    assert report.value("lips") is not None and report.value("lips") > 0.3
    sheet = contact_sheet(good, tmp_path / "sheet.png", report)
    from PIL import Image

    with Image.open(sheet) as image:
        assert image.width == 1200 and image.height > 600
        # not a blank sheet: the frames are there
        assert np.asarray(image.convert("L")).std() > 20


def test_frozen_video_fails(good: Path, tmp_path: Path) -> None:
    bad = ffmpeg(good, tmp_path / "frozen.mp4", "-filter_complex",
                 "[0:v]split[a][b];[a][b]freezeframes=first=30:last=80:replace=30[v]",
                 "-map", "[v]", "-map", "0:a", "-c:a", "copy")
    report = measure(bad, music=False)
    assert not report.checks["frozen"].ok
    assert report.value("frozen") >= 1.0  # type: ignore[operator]
    assert report.checks["face"].ok  # the rest of the picture is fine


def test_silent_video_fails(good: Path, tmp_path: Path) -> None:
    bad = ffmpeg(good, tmp_path / "silent.mp4", "-c:v", "copy", "-af", "volume=0")
    report = measure(bad)
    for name in ("voice", "loudness", "lips"):
        assert not report.checks[name].ok, name
    assert report.checks["face"].ok


def test_cut_head_fails(good: Path, tmp_path: Path) -> None:
    w, h = SIZE
    # the picture moved up by 30 % of its height: the forehead leaves the frame
    bad = ffmpeg(good, tmp_path / "cut.mp4", "-vf",
                 f"crop={w}:{int(h * 0.7)}:0:{int(h * 0.3)},pad={w}:{h}:0:0:black",
                 "-c:a", "copy")
    report = measure(bad)
    assert not report.checks["head"].ok
    assert report.checks["voice"].ok


def test_shifted_audio_fails(good: Path, tmp_path: Path) -> None:
    report = measure(good, keep_media=False)
    shifted = measure(ffmpeg(good, tmp_path / "late.mp4", "-c:v", "copy", "-af",
                             "adelay=200:all=1"), keep_media=False)
    assert report.checks["lag"].ok
    assert not shifted.checks["lag"].ok
    # the sound comes 200 ms late: the lips lead it by about that much
    assert -280 <= shifted.value("lag") <= -120  # type: ignore[operator]


@pytest.mark.parametrize(("case", "args", "kwargs", "check"), [
    ("clipped", ["-c:v", "copy", "-af", "volume=20dB"], {}, "peak"),
    ("quiet", ["-c:v", "copy", "-af", "volume=-12dB"], {}, "loudness"),
    ("short_sound", ["-c:v", "copy", "-af", "atrim=duration=2.5"], {}, "duration"),
    ("music_missing", ["-c", "copy"], {"music": True}, "music"),
    ("music_unasked", ["-filter_complex", "sine=f=220:d=30,volume=-20dB[s];[0:a][s]amix="
                       "inputs=2:duration=first:normalize=0[a]", "-map", "0:v", "-map", "[a]",
                       "-c:v", "copy"], {"music": False}, "music"),
    ("subtitles_late", ["-c", "copy"], {"subtitles": "1\n00:00:09,000 --> 00:00:12,000\nx\n"},
     "subtitles"),
])
def test_each_sound_measure_can_fail(good: Path, tmp_path: Path, case: str, args: list[str],
                                     kwargs: dict, check: str) -> None:
    bad = ffmpeg(good, tmp_path / f"{case}.mp4", *args)
    report = measure(bad, keep_media=False, **kwargs)
    assert not report.checks[check].ok, (case, report.checks[check])
