"""Frame-selection voice matching on real speech: a voice rebuilt from another's recorded
frames comes nearer to that voice (by the speaker encoder and by pitch), keeps its length,
rate and high band, and declines a reference with too little voiced speech. Whether it
serves a profile is measured per profile and language (tests/pipelines/voice/test_serving.py): its
garbled words usually keep it from serving."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from models.base import Audio, EngineSettings, VoiceTarget
from models.chain import FallbackChain
from models.errors import BackendUnavailable
from models.registry import DEFAULT_ORDER
from models.voice import frame_matching
from models.voice.frame_matching import FrameMatcher, FramePool, nearest_mean
from models.voice.matching import MatchParams, apply_match, pitch_median
from tests.fixtures.voice import RATE, SENTENCES, ojt_speech

GAP = np.zeros(RATE // 4, np.float32)


def voice_of_person(text: str) -> Audio:
    """The "person": OpenJTalk's voice with formants and pitch moved by Praat (another
    vocal tract and another F0: the speaker encoder hears someone else)."""
    return apply_match(Audio(ojt_speech(text), RATE), MatchParams(1.18, 230.0))


def person(sentences: tuple[str, ...] = SENTENCES) -> Audio:
    """The person's clips joined by pauses, like a profile's reference."""
    pieces = [np.concatenate([voice_of_person(s).samples, GAP]) for s in sentences]
    return Audio(np.concatenate(pieces), RATE)


@pytest.fixture(scope="module")
def encoder() -> Any:
    from models.voice.resemblyzer import ResemblyzerEncoder

    return ResemblyzerEncoder(EngineSettings())


def similarity(encoder: Any, a: Audio, b: Audio) -> float:
    from models.voice.resemblyzer import cosine

    return cosine(encoder.embed_one(a), encoder.embed_one(b))


def test_nearest_mean_matches_brute_force_across_blocks(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    rng = np.random.default_rng(0)
    queries, pool = rng.standard_normal((50, 6)), rng.standard_normal((40, 6))
    monkeypatch.setattr(frame_matching, "BLOCK", 7)  # several blocks, a ragged last one
    got = nearest_mean(queries, pool, k=3)
    distance = ((queries[:, None, :] - pool[None, :, :]) ** 2).sum(axis=2)
    expected = pool[np.argsort(distance, axis=1)[:, :3]].mean(axis=1)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_rebuilt_speech_comes_nearer_to_the_person(encoder: Any) -> None:
    reference = person()
    text = "来週の土曜日に、みんなで誕生日のお祝いをしましょう。"
    held_out, source = voice_of_person(text), Audio(ojt_speech(text), RATE)
    converted = frame_matching.convert(source, FramePool.of(reference))

    assert converted.sample_rate == source.sample_rate
    assert len(converted.samples) == len(source.samples)
    before = similarity(encoder, source, held_out)
    after = similarity(encoder, converted, held_out)
    assert after > before + 0.05, (before, after)
    # the pitch moves to the person's, within a semitone
    wanted = pitch_median(held_out)
    got = pitch_median(converted)
    assert abs(12 * np.log2(got / wanted)) < 1.0, (got, wanted, pitch_median(source))


def test_the_band_above_the_crossover_is_the_source_s() -> None:
    """16 kHz recordings hold nothing above 8 kHz: the rebuilt speech keeps the source's
    high band there instead of going dull."""
    from scipy.signal import butter, sosfiltfilt

    reference = Audio(np.asarray(
        sosfiltfilt(butter(8, 7500, "lowpass", fs=RATE, output="sos"), person().samples),
        np.float32), RATE)
    source = Audio(ojt_speech(SENTENCES[1]), RATE)
    converted = frame_matching.convert(source, FramePool.of(reference))
    high = butter(8, 9000, "highpass", fs=RATE, output="sos")
    energy_source = float(np.sum(sosfiltfilt(high, source.samples) ** 2))
    energy_out = float(np.sum(sosfiltfilt(high, converted.samples) ** 2))
    assert energy_source > 0
    assert 0.7 < energy_out / energy_source < 1.3


def test_silence_and_a_blip_come_back_unharmed() -> None:
    pool = FramePool.of(person(SENTENCES[:2]))
    silence = Audio(np.zeros(RATE, np.float32), RATE)
    out = frame_matching.convert(silence, pool).samples
    assert len(out) == len(silence.samples) and np.isfinite(out).all()
    assert float(np.abs(out).max()) < 1e-4
    matcher = FrameMatcher(EngineSettings())
    blip = Audio(np.full(RATE // 20, 0.1, np.float32), RATE)  # shorter than a syllable
    assert matcher.convert(blip, VoiceTarget("p:1", person(SENTENCES[:2]))) is blip


def test_too_little_voiced_speech_is_declined() -> None:
    short = Audio(ojt_speech("はい。"), RATE)
    with pytest.raises(BackendUnavailable) as caught:
        FramePool.of(short)
    assert caught.value.code == "VOICE_SERVICE_UNAVAILABLE"


def test_chain_falls_back_to_praat_matching_for_a_short_reference(tmp_path: Any) -> None:
    from models.voice.matching import VoiceMatcher

    settings = EngineSettings(cache_dir=tmp_path)
    chain = FallbackChain("voice_converter", [FrameMatcher(settings), VoiceMatcher(settings)])
    target = VoiceTarget("p:1", Audio(ojt_speech("はい。", -5.0), RATE))
    result = chain.run(lambda c: c.convert(Audio(ojt_speech(SENTENCES[2]), RATE), target))
    assert result.backend == "voice_matching"
    assert [a.outcome for a in result.attempts][0] != "used"


def test_pools_are_analysed_once_per_profile_version(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []
    real = FramePool.of

    def counting(reference: Audio) -> FramePool:
        made.append(1)
        return real(reference)

    monkeypatch.setattr(FramePool, "of", staticmethod(counting))
    matcher = FrameMatcher(EngineSettings())
    reference = person(SENTENCES[:2])
    speech = Audio(ojt_speech("こんにちは。"), RATE)
    matcher.convert(speech, VoiceTarget("p:1", reference))
    matcher.convert(speech, VoiceTarget("p:1", reference))
    assert len(made) == 1
    matcher.convert(speech, VoiceTarget("p:2", reference))  # the profile changed
    assert len(made) == 2


def test_frame_matching_is_selectable_but_off_by_default_and_says_what_it_is() -> None:
    """It garbles words (tests/models/voice/test_words.py): registered, not in the default chain."""
    from models.registry import CAPABILITIES

    assert "frame_matching" in CAPABILITIES["voice_converter"]
    assert "frame_matching" not in DEFAULT_ORDER["voice_converter"]
    assert "voice matching" in FrameMatcher.method and "clon" not in FrameMatcher.method
