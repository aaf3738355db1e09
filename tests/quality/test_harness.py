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
from tests.fixtures.video import DATA, tts

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


GOOD_TEXT = "こんにちは。今日は、みなさんにメッセージをお送りします。"


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A render the way a message makes one: speech with its phoneme timeline."""
    from PIL import Image

    from models.base import EngineSettings, SpeechRequest
    from models.speech.openjtalk import OpenJTalkSpeech

    out = tmp_path_factory.mktemp("quality") / "good.mp4"
    said = OpenJTalkSpeech(EngineSettings()).synthesize(SpeechRequest(GOOD_TEXT))
    assert said.phonemes
    speech = Speech(loud(said.audio), phonemes=said.phonemes)
    request = RenderRequest(image=Image.open(DATA / "portrait_glasses.jpg").convert("RGB"),
                            speech=speech, size=SIZE, fps=25, seed=1, output=out)
    LandmarkHead().render(request)
    return out


def ffmpeg(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run([_ffmpeg(), "-v", "error", "-y", "-i", str(src), *args, str(dst)],
                   check=True, capture_output=True, timeout=120)
    return dst


def test_good_render_passes(good: Path, tmp_path: Path) -> None:
    report = measure(good, music=False, text=GOOD_TEXT, subtitles=[(0.2, 1.0)])
    # THEval's score is measured here but not required: it is calibrated on whole messages
    # (Kokoro, lead-in and tail; bench/lipsync.py), and this 3 s OpenJTalk clip's lips follow
    # its loudness more closely than real lips do (r ~0.7, m ~0.19).
    assert [n for n in report.failed if n != "theval"] == [], table([report]) + "\n" + repr(
        {n: c for n, c in report.checks.items() if not c.ok})
    assert report.value("face") == 100.0
    assert report.value("lips") is not None and report.value("lips") > 0.3
    assert report.value("theval") is not None and 0 < report.info["theval_m"] < 0.5
    assert -120 <= report.value("lag") <= 40  # type: ignore[operator]
    assert report.speech.sum() > 0.5 * report.speech.size  # the VAD found the speech
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
    for name in ("voice", "loudness", "lips", "lag", "theval"):
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
    # the sound comes 160 ms early: the lips trail it
    late = measure(ffmpeg(good, tmp_path / "early_sound.mp4", "-c:v", "copy", "-af",
                          "atrim=start=0.16,asetpts=PTS-STARTPTS"), keep_media=False)
    assert not late.checks["lag"].ok
    assert late.value("lag") > 40  # type: ignore[operator]


def test_short_speech_is_not_judged_a_pass(tmp_path: Path) -> None:
    """Under 2 s of speech the lips cannot be judged: the checks fail (no shortcut to a
    pass), naming why."""
    from PIL import Image

    out = tmp_path / "short.mp4"
    speech = Speech(loud(tts("はい。")))
    LandmarkHead().render(RenderRequest(
        image=Image.open(DATA / "portrait_glasses.jpg").convert("RGB"), speech=speech,
        size=SIZE, fps=25, seed=1, output=out))
    report = measure(out, keep_media=False)
    for name in ("lips", "lag", "theval"):
        assert not report.checks[name].ok
        assert "too little to judge" in report.checks[name].detail


def test_theval_definition() -> None:
    """THEval's numbers: a mouth that is the loudness scores 0 (real lips are not an
    envelope); the mean difference of real video scores 1."""
    from quality.measure import THEVAL_REAL, lip_openness, theval_difference, theval_score

    rng = np.random.default_rng(0)
    sound = rng.random(100)
    speech = np.ones(100, bool)
    assert theval_difference(sound * 3 + 1, sound, speech) == pytest.approx(0.0, abs=1e-6)
    assert theval_score(0.0) == pytest.approx(0.0)
    assert theval_score(THEVAL_REAL) == pytest.approx(1.0)
    assert theval_score(THEVAL_REAL * 1.05) == pytest.approx(0.95)
    # only speech frames count, and frames without a face are left out
    opening = sound.copy()
    opening[:50] = 1 - sound[:50]
    half = np.r_[np.zeros(50, bool), np.ones(50, bool)]
    assert theval_difference(opening, sound, half) == pytest.approx(0.0, abs=1e-6)
    opening[60] = np.nan
    assert np.isfinite(theval_difference(opening, sound, half))
    # openness: inner-lip rows apart over the eyes' distance
    lm = np.zeros((1, 26, 2))
    lm[0, 6:14, 1] = 100.0
    lm[0, 14:22, 1] = 110.0
    lm[0, 22:24, 0] = 50.0
    lm[0, 24:26, 0] = 150.0
    assert lip_openness(lm)[0] == pytest.approx(0.1)


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
