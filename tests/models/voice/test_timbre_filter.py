"""Timbre filtering on real speech: the speech's average spectrum moves toward the person's
while its words, pitch, length and rate stay (how much nearer a listener hears it is the
bench's to judge: bench/voice_rest.py);
strength 0 is the speech itself; a reference without voiced speech is declined."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from models.base import Audio, EngineSettings, VoiceTarget
from models.errors import BackendUnavailable
from models.voice import timbre_filter
from models.voice.matching import MatchParams, apply_match, pitch_median
from models.voice.timbre_filter import Timbre, TimbreFilter
from models.voice.words import KEPT, kept_words
from tests.fixtures.voice import RATE, SENTENCES, ojt_speech


def person() -> Audio:
    """Another vocal tract: OpenJTalk's voice with formants moved by Praat."""
    return Audio(np.concatenate([apply_match(Audio(ojt_speech(s), RATE),
                                             MatchParams(1.18, 0.0)).samples
                                 for s in SENTENCES[1:]]), RATE)


def target(strength: float = 1.0, key: str = "p:1") -> VoiceTarget:
    return VoiceTarget(key, person(), strength=strength)


def source() -> Audio:
    return Audio(ojt_speech(SENTENCES[0]), RATE)


def shape_distance(a: Audio, b: Audio) -> float:
    return float(np.linalg.norm(Timbre.of(a).shape[:20] - Timbre.of(b).shape[:20]))


def counted(monkeypatch: pytest.MonkeyPatch, name: str, owner: Any = timbre_filter
            ) -> list[int]:
    """Each call of ``owner.<name>`` (its audio's length), recorded from now on."""
    calls: list[int] = []
    real = getattr(owner, name)

    def counting(audio: Audio, *args: Any) -> Any:
        calls.append(len(audio.samples))
        return real(audio, *args)

    monkeypatch.setattr(owner, name, counting)
    return calls


def learnt(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each person the filters' shared cache (``timbre_filter.PEOPLE``) learns."""
    return counted(monkeypatch, "make", timbre_filter.PEOPLE)


def test_the_average_timbre_moves_toward_the_person_by_strength() -> None:
    converter = TimbreFilter(EngineSettings())
    before = shape_distance(source(), person())
    half = shape_distance(converter.convert(source(), target(0.5)), person())
    full = shape_distance(converter.convert(source(), target(1.0)), person())
    assert full < half < before, (before, half, full)


def test_words_pitch_length_and_rate_stay() -> None:
    out = TimbreFilter(EngineSettings()).convert(source(), target())
    assert out.sample_rate == RATE and len(out.samples) == len(source().samples)
    assert np.isfinite(out.samples).all()
    assert kept_words(out, source()) >= KEPT
    assert abs(12 * np.log2(pitch_median(out) / pitch_median(source()))) < 0.3


def test_strength_zero_is_the_speech_itself() -> None:
    out = TimbreFilter(EngineSettings()).convert(source(), target(0.0))
    np.testing.assert_array_equal(out.samples, source().samples)


def test_a_reference_without_voiced_speech_is_declined() -> None:
    noise = Audio(np.random.default_rng(0).standard_normal(RATE * 3).astype(np.float32) * 0.01,
                  RATE)
    with pytest.raises(BackendUnavailable):
        TimbreFilter(EngineSettings()).convert(source(), VoiceTarget("n:1", noise))


def test_the_timbre_is_analysed_once_per_profile_version(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    calls = counted(monkeypatch, "analyze")
    converter = TimbreFilter(EngineSettings())
    for _ in range(3):
        converter.convert(source(), target(key="p:1"))
    reference_calls = [n for n in calls if n == len(person().samples)]
    assert len(reference_calls) == 1
    converter.convert(source(), target(key="p:2"))  # the profile changed: analysed again
    assert len([n for n in calls if n == len(person().samples)]) == 2


def test_two_threads_share_one_analysis_of_the_person_and_one_plan_per_sentence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile's languages are measured side by side: each thread filters its own sentence
    at four strengths. The person is analysed once, and each sentence planned once, however
    the threads interleave."""
    people, plans = learnt(monkeypatch), counted(monkeypatch, "plan")
    converter = TimbreFilter(EngineSettings())
    reference = person()
    sentences = [Audio(ojt_speech(s), RATE) for s in SENTENCES[:2]]
    start = threading.Barrier(2)

    def measure(sentence: Audio) -> list[Audio]:
        start.wait()
        return [converter.convert(sentence, VoiceTarget("p:1", reference, strength=strength))
                for strength in (1.3, 1.0, 0.7, 0.4)]

    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(measure, sentences))
    assert len(people) == 1
    assert sorted(plans) == sorted(len(s.samples) for s in sentences)
    alone = TimbreFilter(EngineSettings()).convert(sentences[1], VoiceTarget("p:1", reference,
                                                                             strength=0.7))
    np.testing.assert_allclose(together[1][2].samples, alone.samples, atol=1e-6)


def test_prepare_learns_the_person_ahead_and_never_raises(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A profile lets the filters learn the person while the matching is calibrated
    (:func:`pipelines.voice.serving.prepare_converters`): the conversions after it learn
    nothing again (the two timbre filters learn the person once between them), and
    recordings that cannot be learnt from are reported by the conversion, not by the
    preparation."""
    from models.base import Preparing
    from models.voice.formant_warp import FormantWarp
    from models.voice.timbre_filter_kinds import KindTimbreFilter
    from pipelines.voice.serving import prepare_converters

    people = learnt(monkeypatch)
    converters: list[TimbreFilter | FormantWarp] = [
        TimbreFilter(EngineSettings()), KindTimbreFilter(EngineSettings()),
        FormantWarp(EngineSettings())]
    assert all(isinstance(c, Preparing) for c in converters)
    aim = target(key="p:9")
    prepare_converters(converters, aim)
    assert len(people) == 1
    for converter in converters:
        converter.convert(source(), aim)
    assert len(people) == 1
    noise = Audio(np.random.default_rng(1).standard_normal(RATE * 3).astype(np.float32) * 0.01,
                  RATE)
    silent = VoiceTarget("n:9", noise)
    prepare_converters(converters, silent)
    for converter in converters:
        with pytest.raises(BackendUnavailable):
            converter.convert(source(), silent)


def test_past_full_strength_the_filter_goes_on_along_the_same_line() -> None:
    """Past 1 the filter is a caricature: the speech's timbre moves further the same way
    (how the person differs from the source, exaggerated), up to MAX_STRENGTH and no more."""
    converter = TimbreFilter(EngineSettings())
    start = Timbre.of(source()).shape[:20]
    way = Timbre.of(person()).shape[:20] - start

    def along(strength: float) -> float:
        moved = Timbre.of(converter.convert(source(), target(strength))).shape[:20] - start
        return float(np.dot(moved, way) / np.dot(way, way))

    full, past = along(1.0), along(timbre_filter.MAX_STRENGTH)
    assert timbre_filter.MAX_STRENGTH > 1.0
    assert past > full + 0.1, (full, past)
    beyond = converter.convert(source(), target(timbre_filter.MAX_STRENGTH + 1.0))
    np.testing.assert_array_equal(
        beyond.samples, converter.convert(source(), target(timbre_filter.MAX_STRENGTH)).samples)
