"""Subtitle timing, SRT/VTT text, and burn-in with a Japanese font."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.base import Audio, Speech, Timing
from models.talking_head.mp4 import Mp4Writer
from pipelines.media import ffmpeg_exe
from pipelines.video import subtitles as subs


def tone_speech(pattern: list[tuple[float, bool]]) -> Speech:
    rate = 16000
    parts = []
    for seconds, voiced in pattern:
        t = np.arange(int(seconds * rate)) / rate
        parts.append(0.3 * np.sin(2 * np.pi * 200 * t) if voiced else np.zeros_like(t))
    return Speech(Audio(np.concatenate(parts).astype(np.float32), rate))


def test_sentences_split_and_wrap() -> None:
    assert subs.split_sentences("こんにちは。元気ですか？はい!") == ["こんにちは。", "元気ですか？", "はい!"]
    assert subs.split_sentences("Hello there. How are you?") == ["Hello there.", "How are you?"]
    lines = subs.wrap("あ" * 50, 40)
    assert all(subs._width(line) <= 40 for line in lines)
    assert "".join(lines) == "あ" * 50


def test_cues_snap_to_pauses() -> None:
    speech = tone_speech([(0.3, False), (1.0, True), (0.5, False), (1.0, True), (0.3, False)])
    cues = subs.cues_for("最初の文です。次の文です。", speech)
    assert [c.text for c in cues] == ["最初の文です。", "次の文です。"]
    assert abs(cues[0].start - 0.3) < 0.05
    assert 1.3 <= cues[0].end <= 1.8  # the boundary falls in the pause
    assert abs(cues[1].end - 2.8) < 0.05


def test_engine_timing_wins() -> None:
    speech = Speech(tone_speech([(1.0, True)]).audio, sentences=(Timing(0.1, 0.9, "はい。"),))
    assert subs.cues_for("ignored", speech) == [Timing(0.1, 0.9, "はい。")]


def test_srt_and_vtt_format() -> None:
    cues = [Timing(0.0, 1.5, "こんにちは。"), Timing(61.25, 3725.5, "さようなら。")]
    srt = subs.to_srt(cues)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:01,500\nこんにちは。\n\n2\n")
    assert "00:01:01,250 --> 01:02:05,500" in srt
    vtt = subs.to_vtt(cues)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\n")


def test_caption_has_japanese_glyphs() -> None:
    rgba, x0, y0 = subs.caption_image("日本語の字幕です。", 512, 512)
    assert rgba.shape[2] == 4
    assert 0 <= x0
    assert y0 + rgba.shape[0] <= 512
    white = (rgba[..., :3].min(axis=2) > 230) & (rgba[..., 3] > 200)
    assert white.sum() > 200  # real glyph strokes drawn, not empty boxes
    assert Path(subs.font_path()).is_file()


@pytest.mark.slow
def test_burn_in_draws_on_frames(tmp_path: Path) -> None:
    speech = tone_speech([(1.0, True)])
    src = tmp_path / "plain.mp4"
    with Mp4Writer(src, (320, 240), 25, speech.audio) as writer:
        for _ in range(25):
            writer.write(np.full((240, 320, 3), 90, np.uint8))
    out = subs.burn_in(src, tmp_path / "subbed.mp4", [Timing(0.0, 0.5, "テスト")])
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(out), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "pipe:1"], capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 240, 320, 3)
    assert len(frames) == 25
    assert frames[2, 150:].max() > 200  # caption visible early
    assert frames[20, 150:].max() < 120  # and gone after its cue
