"""The timbre filter by kind of sound, on real speech: a person whose voiced sounds are brighter
and whose noisy sounds are duller than the speech's (so that their average barely differs) is
reached kind by kind, where one average gain for every frame cannot; a speech whose sounds
already lie as the person's gets no difference; words, pitch and length stay."""

from __future__ import annotations

import numpy as np
import pytest

from models.base import Audio, EngineSettings, VoiceTarget
from models.voice import formants, timbre_filter
from models.voice.matching import pitch_median
from models.voice.sound_kinds import SoundKinds
from models.voice.timbre_filter import TimbreFilter
from models.voice.timbre_filter_kinds import KindTimbreFilter
from models.voice.words import KEPT, kept_words
from tests.fixtures.voice import RATE, SENTENCES, ojt_speech

BUMP_DB = 8.0


def source() -> Audio:
    return Audio(ojt_speech(SENTENCES[0]), RATE)


def person() -> Audio:
    """OpenJTalk's voice saying two other sentences, its voiced frames lifted and its
    unvoiced frames cut by :data:`BUMP_DB` around 2.5 kHz."""
    said = Audio(np.concatenate([ojt_speech(s) for s in SENTENCES[1:]]), RATE)
    found = formants.analyze(said)
    freqs = np.linspace(0.0, formants.ANALYSIS_RATE / 2, found.fft_size // 2 + 1)
    bump = BUMP_DB / 20.0 * np.log(10.0) * np.exp(-(((freqs - 2500.0) / 700.0) ** 2))
    way = np.where(found.f0 > 0, 1.0, -1.0)
    return formants.apply_gains(said, per_frame=way[:, None] * bump[None, :])


def contrast(audio: Audio, voiced: np.ndarray | None = None) -> np.ndarray:
    """How the loud voiced frames' mean envelope lies from the loud unvoiced frames' (c1..20);
    ``voiced``: which frames are voiced, where the speech is a filtered copy of another."""
    found = formants.analyze(audio)
    is_voiced = found.f0 > 0 if voiced is None else voiced
    coded = found.coded[:, 1:21]
    return np.asarray(coded[found.loud & is_voiced].mean(axis=0)
                      - coded[found.loud & ~is_voiced].mean(axis=0))


def test_each_kind_of_sound_moves_toward_the_person_s(monkeypatch: pytest.MonkeyPatch) -> None:
    speech = source()
    voiced = formants.analyze(speech).f0 > 0
    aim = contrast(person())

    def off(audio: Audio) -> float:
        return float(np.linalg.norm(contrast(audio, voiced) - aim))

    def filtered(strength: float) -> Audio:
        return TimbreFilter(EngineSettings()).convert(
            speech, VoiceTarget("p:1", person(), strength=strength))

    before = off(speech)
    by_kind = {s: off(filtered(s)) for s in (1.0, timbre_filter.MAX_STRENGTH)}
    monkeypatch.setattr(TimbreFilter, "kind_share", 0.0)
    average = off(filtered(1.0))  # one gain for every frame leaves the kinds where they lay
    assert abs(average - before) < 0.25 * before, (before, average)
    assert by_kind[1.0] < 0.85 * average, (average, by_kind)
    assert by_kind[timbre_filter.MAX_STRENGTH] < by_kind[1.0], by_kind


def test_the_whole_difference_comes_nearer_the_person_s_kinds_than_half() -> None:
    """The filter that takes each kind's whole difference (:mod:`timbre_filter_kinds`) brings
    the kinds nearer the person's than the one that takes half, at the same strength."""
    speech = source()
    voiced = formants.analyze(speech).f0 > 0
    aim = contrast(person())

    def off(filter_: TimbreFilter) -> float:
        out = filter_.convert(speech, VoiceTarget("p:1", person(), strength=1.0))
        return float(np.linalg.norm(contrast(out, voiced) - aim))

    half, whole = off(TimbreFilter(EngineSettings())), off(KindTimbreFilter(EngineSettings()))
    assert KindTimbreFilter.kind_share > TimbreFilter.kind_share
    assert whole < 0.9 * half, (half, whole)


def test_the_person_s_own_speech_gets_no_difference() -> None:
    """Kinds found in the person's recordings, and those recordings filtered toward them:
    every kind lies as the person's already, so no frame is changed; toward the brightened
    person, the voiced frames are lifted around 2.5 kHz."""
    found = formants.analyze(source())
    assert np.abs(SoundKinds.of(found).difference(found)).max() < 1e-6
    toward = SoundKinds.of(formants.analyze(person())).difference(found)
    assert np.abs(toward).max() > 0.05


@pytest.mark.parametrize("filter_", [TimbreFilter, KindTimbreFilter])
def test_words_pitch_and_length_stay(filter_: type[TimbreFilter]) -> None:
    out = filter_(EngineSettings()).convert(
        source(), VoiceTarget("p:1", person(), strength=timbre_filter.MAX_STRENGTH))
    assert out.sample_rate == RATE and len(out.samples) == len(source().samples)
    assert np.isfinite(out.samples).all()
    assert kept_words(out, source()) >= KEPT
    assert abs(12 * np.log2(pitch_median(out) / pitch_median(source()))) < 0.3
