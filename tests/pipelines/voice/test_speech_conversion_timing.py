"""A profile's speech keeps its source's timeline through voice conversion: lip-sync reads
the phoneme timings, so they must stay true to the converted audio."""

from __future__ import annotations

import numpy as np
import pytest

from models.base import Audio, Speech, Timing, VoiceTarget
from models.chain import FallbackChain
from pipelines.voice.profiles import Profile
from pipelines.voice.speech import convert_to_profile

RATE = 24000


class Stretching:
    """A converter whose output is ``factor`` times as long as its input."""

    name = "stretching"
    method = "stretching"

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def available(self) -> tuple[bool, str]:
        return True, "test"

    def convert(self, audio: Audio, target: VoiceTarget) -> Audio:
        n = int(round(audio.samples.size * self.factor))
        x = np.interp(np.arange(n) / self.factor, np.arange(audio.samples.size), audio.samples)
        return Audio(x.astype(np.float32), audio.sample_rate)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("factor", "expected"), [(1.0, 1.0), (1.005, 1.0), (1.25, 1.25)])
def test_timeline_survives_conversion(factor: float, expected: float) -> None:
    t = np.arange(2 * RATE) / RATE
    source = Speech(Audio((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), RATE),
                    sentences=(Timing(0.1, 1.9, "こんにちは"),),
                    phonemes=(Timing(0.1, 0.2, "k"), Timing(0.2, 0.4, "o"),
                              Timing(1.5, 1.9, "a")))
    profile = Profile("p1", "P", "ja", "2026-01-01", "2026-01-01")
    target = VoiceTarget("p1:1", Audio(np.zeros(RATE, np.float32), RATE))
    chain = FallbackChain("voice_converter", [Stretching(factor)])
    converted, report = convert_to_profile(source, profile, None, chain,  # type: ignore[arg-type]
                                           target=target)
    assert report.backend == "stretching"
    assert converted.audio.duration == pytest.approx(2.0 * factor, abs=1e-3)
    for before, after in zip(source.phonemes, converted.phonemes, strict=True):
        assert after.text == before.text
        assert after.start == pytest.approx(before.start * expected)
        assert after.end == pytest.approx(before.end * expected)
    assert converted.sentences[0].end == pytest.approx(1.9 * expected)
