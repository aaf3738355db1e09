"""pipelines/sound/prosody.py: each operation measured on real speech and on a vowel with known F0."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.base import Audio
from models.errors import InvalidInput
from pipelines.sound import prosody
from pipelines.sound.loudness import true_peak_db
from tests.fixtures.sound import vowel


def _aligned_shift(before: Audio, after: Audio) -> float:
    """Median per-frame F0 ratio in semitones over frames voiced in both (same timing)."""
    _, f0a = prosody.f0_track(before, floor=50, ceiling=1200)
    _, f0b = prosody.f0_track(after, floor=50, ceiling=1200)
    n = min(f0a.size, f0b.size)
    both = (f0a[:n] > 0) & (f0b[:n] > 0)
    assert both.sum() > 20
    return float(np.median(12 * np.log2(f0b[:n][both] / f0a[:n][both])))


def _semitone_spread(audio: Audio) -> float:
    _, f0 = prosody.f0_track(audio)
    voiced = f0[f0 > 0]
    return float(np.std(12 * np.log2(voiced)))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


@pytest.mark.parametrize("semitones", [-12.0, -5.0, 2.0, 7.0, 12.0])
def test_pitch_shift_on_a_vowel_is_exact(semitones: float) -> None:
    source = vowel(150)
    shifted, _ = prosody.adjust(source, {"pitch_shift": semitones})
    _, f0 = prosody.f0_track(shifted, floor=30, ceiling=1500)
    measured = 12 * math.log2(np.median(f0[f0 > 0]) / 150)
    assert measured == pytest.approx(semitones, abs=0.1)
    assert shifted.duration == pytest.approx(source.duration, rel=0.01)


@pytest.mark.parametrize("semitones", [-5.0, 2.0, 3.0])
def test_pitch_shift_on_speech_within_a_tenth_of_a_semitone(speech: Audio,
                                                            semitones: float) -> None:
    shifted, report = prosody.adjust(speech, {"pitch_shift": semitones})
    assert _aligned_shift(speech, shifted) == pytest.approx(semitones, abs=0.1)
    assert "pitch" in report.changes
    assert f"{semitones:+.2f}" in report.changes["pitch"]


def test_pitch_shift_preserves_formants() -> None:
    """F2 of a vowel stays put when the pitch rises 7 semitones; without formant
    preservation it moves with the pitch (the control shows the measure can tell)."""
    import parselmouth
    import pedalboard

    def f2(audio: Audio) -> float:
        sound = parselmouth.Sound(audio.samples.astype(np.float64), audio.sample_rate)
        formant = sound.to_formant_burg(max_number_of_formants=5, maximum_formant=5000)
        return formant.get_value_at_time(2, audio.duration / 2)

    source = vowel(200)
    kept = prosody.change_pitch_and_tempo(source, 7.0, 1.0)
    chipmunk = Audio(pedalboard.time_stretch(source.samples[None], source.sample_rate,
                                             pitch_shift_in_semitones=7.0,
                                             preserve_formants=False)[0], source.sample_rate)
    assert f2(kept) == pytest.approx(f2(source), rel=0.1)
    assert f2(chipmunk) > f2(source) * 1.3


@pytest.mark.parametrize("speed", [0.5, 0.8, 1.1, 1.5, 2.0])
def test_time_stretch_duration_within_one_percent(speech: Audio, speed: float) -> None:
    stretched, report = prosody.adjust(speech, {"time_stretch": speed})
    assert stretched.duration == pytest.approx(speech.duration / speed, rel=0.01)
    assert report.original_duration == pytest.approx(speech.duration, abs=0.001)
    assert report.duration == pytest.approx(stretched.duration, abs=0.001)


def test_time_stretch_keeps_pitch(speech: Audio) -> None:
    stretched, _ = prosody.adjust(speech, {"time_stretch": 1.25})
    _, f0a = prosody.f0_track(speech)
    _, f0b = prosody.f0_track(stretched)
    shift = 12 * math.log2(np.median(f0b[f0b > 0]) / np.median(f0a[f0a > 0]))
    assert abs(shift) < 0.3


def test_energy_boost_is_peak_safe(speech: Audio) -> None:
    hot = Audio(speech.samples / np.abs(speech.samples).max() * 0.89, speech.sample_rate)
    boosted, report = prosody.adjust(hot, {"energy_boost": 2.0})
    assert true_peak_db(boosted.samples) <= -1.0 + 1e-3
    assert _rms(boosted.samples) > _rms(hot.samples) * 1.3
    assert report.limiter_db > 0
    assert "limiter" in report.changes


def test_energy_cut_is_exact_gain(speech: Audio) -> None:
    quieter, _ = prosody.adjust(speech, {"energy_boost": 0.5})
    assert _rms(quieter.samples) / _rms(speech.samples) == pytest.approx(0.5, rel=0.01)


def test_neutral_leaves_audio_untouched(speech: Audio) -> None:
    out, report = prosody.adjust(speech, {"emotion": "neutral"})
    assert np.array_equal(out.samples, speech.samples)
    assert report.changes == {}


@pytest.mark.parametrize(("factor", "low", "high"), [(2.0, 1.4, 3.0), (0.0, 0.0, 0.4),
                                                     (0.5, 0.3, 0.8)])
def test_intonation_scales_the_contour(speech: Audio, factor: float, low: float,
                                       high: float) -> None:
    before = _semitone_spread(speech)
    out, _ = prosody.adjust(speech, {"intonation": factor})
    ratio = _semitone_spread(out) / before
    assert low <= ratio <= high
    assert out.duration == pytest.approx(speech.duration, abs=0.01)


def test_intonation_keeps_median_pitch(speech: Audio) -> None:
    out, _ = prosody.adjust(speech, {"intonation": 1.8})
    _, f0a = prosody.f0_track(speech)
    _, f0b = prosody.f0_track(out)
    assert abs(12 * math.log2(np.median(f0b[f0b > 0]) / np.median(f0a[f0a > 0]))) < 0.5


def test_pauses_lengthen_and_shorten_only_the_gaps(speech: Audio) -> None:
    spans = prosody.find_pauses(speech)
    assert len(spans) >= 2  # the two sentence breaks
    longer, report = prosody.adjust(speech, {"pauses": 2.0})
    shorter, _ = prosody.adjust(speech, {"pauses": 0.0})
    keep = int(0.05 * speech.sample_rate)
    core = sum(end - start - 2 * keep for start, end in spans) / speech.sample_rate
    assert longer.duration - speech.duration == pytest.approx(core, abs=0.03)
    assert speech.duration - shorter.duration == pytest.approx(core, abs=0.03)
    assert report.pauses_found == len(spans)
    # the speech itself is kept: the same number of pauses, and the voiced time is unchanged
    assert len(prosody.find_pauses(longer)) == len(spans)
    _, f0a = prosody.f0_track(speech)
    _, f0b = prosody.f0_track(longer)
    assert (f0b > 0).sum() == pytest.approx((f0a > 0).sum(), rel=0.05)


def test_presets_table_follows_the_original_app() -> None:
    table = prosody.EMOTION_PRESETS
    assert {"neutral", "happy", "celebration", "excited", "calm", "sad"} <= set(table)
    assert table["happy"]["time_stretch"] == 1.10
    assert table["happy"]["pitch_shift"] == 2.0
    assert 20 * math.log10(table["happy"]["energy_boost"]) == pytest.approx(2.0, abs=0.05)
    assert 2 ** (table["celebration"]["pitch_shift"] / 12) == pytest.approx(1.15, abs=0.002)
    assert table["celebration"]["time_stretch"] == 1.10
    assert table["celebration"]["energy_boost"] == 1.20
    for values in table.values():
        for name, (low, high) in prosody.RANGES.items():
            assert low <= values[name] <= high


def test_celebration_preset_applies_every_number(speech: Audio) -> None:
    out, report = prosody.adjust(speech, {"emotion": "celebration"})
    assert report.emotion == "celebration"
    assert report.applied == pytest.approx(prosody.EMOTION_PRESETS["celebration"], abs=1e-4)
    assert set(report.changes) >= {"pitch", "speed", "energy", "intonation", "pauses"}
    assert out.duration < speech.duration / 1.05


def test_explicit_values_override_the_preset(speech: Audio) -> None:
    params = prosody.ProsodyParams.from_mapping({"emotion": "sad", "time_stretch": 1.0})
    emotion, values = params.resolved()
    assert emotion == "sad"
    assert values["time_stretch"] == 1.0
    assert values["pitch_shift"] == prosody.EMOTION_PRESETS["sad"]["pitch_shift"]


@pytest.mark.parametrize(("text", "emotion"), [
    ("お誕生日おめでとう！", "celebration"),
    ("Happy birthday, Ken!", "celebration"),
    ("Congratulations on your graduation", "celebration"),
    ("いつもありがとう。感謝しています。", "happy"),
    ("Thank you so much for everything", "happy"),
    ("本当にごめんなさい。", "sad"),
    ("I'm so sorry for your loss", "sad"),
    ("ゆっくり休んでね。おやすみ", "calm"),
    ("Wow, this is amazing!", "excited"),
    ("明日の会議は十時からです。", "neutral"),
])
def test_auto_picks_a_preset_from_the_text(text: str, emotion: str) -> None:
    assert prosody.auto_emotion(text) == emotion
    params = prosody.ProsodyParams.from_mapping({"emotion": "auto", "text": text})
    assert params.resolved()[0] == emotion


@pytest.mark.parametrize(("raw", "field"), [
    ({"pitch_shift": 13}, "pitch_shift"), ({"pitch_shift": -12.5}, "pitch_shift"),
    ({"time_stretch": 0.49}, "time_stretch"), ({"time_stretch": 2.01}, "time_stretch"),
    ({"energy_boost": 0}, "energy_boost"), ({"intonation": 2.5}, "intonation"),
    ({"pauses": -0.1}, "pauses"), ({"pitch_shift": "nan"}, "pitch_shift"),
    ({"pitch_shift": "inf"}, "pitch_shift"), ({"time_stretch": "fast"}, "time_stretch"),
    ({"time_stretch": True}, "time_stretch"), ({"pitch_shift": [1]}, "pitch_shift"),
    ({"emotion": "angry"}, "emotion"), ({"emotion": "auto"}, "text"),
    ({"speed": 3}, "time_stretch"),
])
def test_bad_params_name_the_field_and_range(raw: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        prosody.ProsodyParams.from_mapping(raw)
    err = caught.value
    assert err.code == "PROSODY_INVALID_PARAMS"
    assert err.details["field"] == field
    assert err.message_ja
    if field in prosody.RANGES:
        low, high = prosody.RANGES[field]
        assert err.details["allowed"] == {"min": low, "max": high}


def test_unknown_keys_are_reported_not_applied() -> None:
    params = prosody.ProsodyParams.from_mapping({"pitch_shfit": 3, "speed": 1.2})
    assert params.ignored == ("pitch_shfit",)
    assert params.resolved()[1]["time_stretch"] == 1.2
    assert params.resolved()[1]["pitch_shift"] == 0.0


def test_silence_and_tiny_clips_do_not_break() -> None:
    silent = Audio(np.zeros(24000, dtype=np.float32), 24000)
    out, report = prosody.adjust(silent, {"emotion": "excited"})
    assert np.all(np.isfinite(out.samples))
    assert np.abs(out.samples).max() == 0
    assert any("intonation unchanged" in n for n in report.notes)
    tiny = vowel(200, seconds=0.03)
    out, _ = prosody.adjust(tiny, {"emotion": "celebration"})
    assert np.all(np.isfinite(out.samples))


def test_docs_show_the_same_preset_table() -> None:
    from pathlib import Path

    from app.ui.prosody import preset_markdown

    doc = (Path(__file__).resolve().parents[3] / "docs" / "prosody-and-bgm.md").read_text()
    assert preset_markdown().strip() in doc
