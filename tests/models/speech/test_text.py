"""Text normalisation, unit splitting, joins and the local engines' audio (quality proxies)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.base import EngineSettings, SpeechRequest
from models.speech.dsp import (
    apply_volume,
    change_pitch,
    click_score,
    join,
    voiced_bounds,
)
from models.speech.text import normalize_ja, split_units
from models.voice.matching import pitch_median
from tests.fixtures.voice import SENTENCES, ojt_speech


@pytest.mark.parametrize(("text", "reading"), [
    ("3月5日", "サンガツイツカ"),
    ("3,500円", "サンゼンゴヒャクエン"),
    ("2024/3/5", "ニセンニジューヨネンサンガツイツカ"),
    ("10:30", "ジュージサンジュップン"),
    ("気温は-3.5℃", "マイナスサンテンゴド"),
    ("50%", "ゴジュッパーセント"),
    ("090-1234-5678", "ゼロキューゼロ、イチニーサンヨン、ゴーロクナナハチ"),
])
def test_numbers_dates_times_read_as_kana(text: str, reading: str) -> None:
    assert reading in normalize_ja(text)
    assert not any(ch.isdigit() for ch in normalize_ja(text))


def test_units_and_pauses() -> None:
    units = split_units("こんにちは、世界。元気？\nはい！！", pause=2.0)
    assert [u.text for u in units] == ["こんにちは", "世界", "元気", "はい"]
    assert [u.pause for u in units] == [0.6, 1.0, 1.2, 1.2]
    assert [u.sentence for u in units] == [0, 0, 1, 2]


def test_english_periods_inside_numbers_do_not_split() -> None:
    units = split_units("It is 3.5 degrees, e.g. warm. Yes!")
    assert units[0].text == "It is 3.5 degrees"
    assert units[0].end == ","


def test_long_unpunctuated_text_is_chunked() -> None:
    units = split_units("あ" * 300)
    assert len(units) == 3
    assert all(len(u.text) <= 120 for u in units)


def test_join_exact_pauses_without_clicks() -> None:
    rate = 24000
    tone = (0.5 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)).astype(np.float32)
    audio, spans = join([(tone, 0.3), (tone, 0.5), (tone, 0.0)], rate)
    assert spans[1][0] - spans[0][1] == pytest.approx(0.3, abs=0.01)
    assert spans[2][0] - spans[1][1] == pytest.approx(0.5, abs=0.01)
    for start, end in spans:
        assert click_score(audio, rate, start) < 3
        assert click_score(audio, rate, end) < 3


def test_pitch_and_intonation_measured() -> None:
    speech = ojt_speech(SENTENCES[0], half_tone=-6.0)  # ~250 Hz: well inside the tracker
    from models.base import Audio

    base = pitch_median(Audio(speech, 24000))
    up = pitch_median(Audio(change_pitch(speech, 24000, 4.0), 24000))
    assert up / base == pytest.approx(2 ** (4 / 12), rel=0.05)
    flat = change_pitch(speech, 24000, 0.0, intonation=0.0)
    import parselmouth

    def spread(x: np.ndarray) -> float:
        f0 = parselmouth.Sound(x.astype(np.float64), 24000).to_pitch().selected_array["frequency"]
        return float(np.std(np.log(f0[f0 > 0])))

    assert spread(flat) < 0.3 * spread(speech)


def test_volume_never_clips() -> None:
    loud = apply_volume(np.array([0.0, 0.8, -0.9], np.float32), 2.0)
    assert np.abs(loud).max() <= 0.97


@pytest.fixture(scope="module")
def kokoro() -> object:
    from models.speech.kokoro import KokoroSpeech

    return KokoroSpeech(EngineSettings(cache_dir=Path.home() / ".cache" / "studio-test"))


@pytest.mark.slow
def test_kokoro_long_text_quality(kokoro: object) -> None:
    text = ("今日は2024年3月5日です。天気は晴れ、気温は15℃くらいでしょう。" * 6)[:200]
    speech = kokoro.synthesize(SpeechRequest(text, voice="jf_alpha"))  # type: ignore[attr-defined]
    samples, rate = speech.audio.samples, speech.audio.sample_rate
    assert rate == 24000
    assert np.abs(samples).max() < 0.99  # no clipping
    start, end = voiced_bounds(samples, rate)
    assert start / rate < 0.3
    assert (len(samples) - end) / rate < 0.3
    for timing in speech.sentences:
        assert click_score(samples, rate, timing.start) < 10
        assert click_score(samples, rate, timing.end) < 10
    assert len(speech.sentences) >= 6
    assert speech.sentences[0].text == "今日は2024年3月5日です。"


@pytest.mark.slow
def test_kokoro_pause_and_speed_scale(kokoro: object) -> None:
    text = "こんにちは、世界。"
    base = kokoro.synthesize(SpeechRequest(text))  # type: ignore[attr-defined]
    long = kokoro.synthesize(SpeechRequest(text, pause=3.0))  # type: ignore[attr-defined]
    fast = kokoro.synthesize(SpeechRequest(text, speed=2.0))  # type: ignore[attr-defined]
    # one 、 pause: 0.3 s -> 0.9 s
    assert long.audio.duration - base.audio.duration == pytest.approx(0.6, abs=0.05)
    assert fast.audio.duration < 0.75 * base.audio.duration
    blend = kokoro.synthesize(SpeechRequest(text, voice="jf_alpha:0.5+jm_kumo:0.5"))  # type: ignore[attr-defined]
    assert blend.audio.duration > 0.5
