"""Formants moved as a filter, on real speech (OpenJTalk's voice, its formants moved by
Praat for a second vocal tract): each frame's formants move by the scale asked, the speech
keeps its length, pitch and words, and the fit of a person's formant scale points the way
Praat moved them."""

from __future__ import annotations

import numpy as np
import pytest

from models.base import Audio, EngineSettings, VoiceTarget
from models.errors import BackendUnavailable
from models.voice import formants
from models.voice.formant_warp import MAX_SHIFT, FormantWarp
from models.voice.matching import MatchParams, apply_match, pitch_median
from models.voice.timbre_filter import Timbre, TimbreFilter
from models.voice.words import KEPT, kept_words
from tests.fixtures.voice import RATE, SENTENCES, ojt_speech


def source() -> Audio:
    return Audio(ojt_speech(SENTENCES[0]), RATE)


def person(ratio: float) -> Audio:
    """Another vocal tract: OpenJTalk's voice saying two other sentences, every formant
    moved by ``ratio`` (Praat "Change gender", pitch kept)."""
    return Audio(np.concatenate([apply_match(Audio(ojt_speech(s), RATE),
                                             MatchParams(ratio, 0.0)).samples
                                 for s in SENTENCES[1:]]), RATE)


def frame_scale(moved: Audio, start: Audio) -> float:
    """How far each loud frame's formants moved from ``start`` to ``moved`` (the median
    over frames of the stretch of the start frame's envelope that best lines up with the
    moved one, their slopes taken out): a static filter moves no formant."""
    a, b = formants.analyze(start), formants.analyze(moved)
    logs_a = a.log_envelopes
    logs_b = b.log_envelopes
    freqs = np.linspace(0, formants.ANALYSIS_RATE / 2, logs_a.shape[1])
    band = (freqs > 300) & (freqs < 4500)

    def flat(y: np.ndarray) -> np.ndarray:
        y = y[band]
        out: np.ndarray = y - np.polyval(np.polyfit(freqs[band], y, 1), freqs[band])
        return out

    scales = np.arange(0.85, 1.151, 0.005)
    found = []
    for t in np.nonzero(a.loud & (a.f0 > 0))[0][::4]:
        aim = flat(logs_b[t])
        fits = [np.corrcoef(flat(formants.stretch(logs_a[t], s)), aim)[0, 1] for s in scales]
        found.append(scales[int(np.argmax(fits))])
    return float(np.median(found))


@pytest.mark.parametrize("scale", [0.91, 1.09])
def test_each_frame_s_formants_move_by_the_scale(scale: float) -> None:
    speech = source()
    moved = formants.apply_gains(speech, per_frame=formants.warp_gain(
        formants.analyze(speech), scale))
    assert len(moved.samples) == len(speech.samples) and np.isfinite(moved.samples).all()
    assert frame_scale(moved, speech) == pytest.approx(scale, abs=0.02)
    assert abs(12 * np.log2(pitch_median(moved) / pitch_median(speech))) < 0.3
    assert kept_words(moved, speech) >= KEPT


def test_no_gain_is_the_speech_itself() -> None:
    speech = source()
    same = formants.apply_gains(speech)
    np.testing.assert_allclose(same.samples, speech.samples, atol=1e-4)


@pytest.mark.parametrize(("ratio", "way"), [(0.88, -1), (1.12, 1)])
def test_the_fit_points_the_way_the_person_s_formants_lie(ratio: float, way: int) -> None:
    fitted = formants.formant_scale(formants.analyze(source()), Timbre.of(person(ratio)).shape)
    assert (fitted - 1.0) * way > 0.02, fitted


@pytest.mark.parametrize(("ratio", "strength", "expected"),
                         [(0.88, 1.0, 1 - MAX_SHIFT), (0.88, 0.67, 1 - 0.67 * MAX_SHIFT),
                          (1.12, 1.0, 1 + MAX_SHIFT)])
def test_the_warp_moves_the_formants_toward_the_person_by_strength(
        ratio: float, strength: float, expected: float) -> None:
    target = VoiceTarget(f"p:{ratio}", person(ratio), strength=strength)
    out = FormantWarp(EngineSettings()).convert(source(), target)
    assert frame_scale(out, source()) == pytest.approx(expected, abs=0.02)
    zero = FormantWarp(EngineSettings()).convert(
        source(), VoiceTarget("p:0", person(ratio), strength=0.0))
    np.testing.assert_array_equal(zero.samples, source().samples)


def test_the_timbre_filter_moves_the_formants_too() -> None:
    """Before, the filter was one static gain: each frame's formants stayed where the
    source voice had them (frame scale 1.0), whatever the person's tract."""
    out = TimbreFilter(EngineSettings()).convert(source(), VoiceTarget("p:t", person(1.12)))
    assert frame_scale(out, source()) > 1.05


def test_a_reference_without_voiced_speech_is_declined() -> None:
    noise = Audio(np.random.default_rng(0).standard_normal(RATE * 3).astype(np.float32) * 0.01,
                  RATE)
    with pytest.raises(BackendUnavailable):
        FormantWarp(EngineSettings()).convert(source(), VoiceTarget("n:1", noise))
