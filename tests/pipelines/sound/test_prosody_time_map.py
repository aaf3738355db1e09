"""Timings said over a voice follow it through prosody: pauses change by whole amounts and
the tempo by a ratio, so a phoneme after three pauses is where the reshaped voice says it."""

from __future__ import annotations

import numpy as np
import pytest

from models.base import Audio, Timing
from pipelines.message.outputs import ProsodyOutput
from pipelines.sound.prosody import adjust

RATE = 24000


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t / seconds)).astype(np.float32)


def onsets(samples: np.ndarray) -> list[float]:
    idx = np.nonzero(np.abs(samples) > 0.02)[0]
    groups = np.split(idx, np.nonzero(np.diff(idx) > RATE // 10)[0] + 1)
    return [g[0] / RATE for g in groups]


@pytest.mark.parametrize("emotion", ["sad", "calm", "excited"])
def test_timings_follow_pauses_and_tempo(emotion: str) -> None:
    gap = np.zeros(int(0.5 * RATE), np.float32)
    edge = np.zeros(int(0.1 * RATE), np.float32)
    x = np.concatenate([edge, tone(0.6), gap, tone(0.6), gap, tone(0.6), gap, tone(0.6), edge])
    out, report = adjust(Audio(x, RATE), {"emotion": emotion})
    assert report.pauses_found == 3 and len(report.time_map) == 8
    assert "time_map" not in report.to_dict()  # the API's record is unchanged
    said = ProsodyOutput("k", emotion, duration=out.duration,
                         time_scale=out.duration / (x.size / RATE), time_map=report.time_map)
    again = ProsodyOutput.from_dict(said.as_dict())
    assert again.time_map == said.time_map
    starts = [0.1, 1.2, 2.3, 3.4]
    mapped = [t.start for t in again.timed([Timing(s, s + 0.6, "a") for s in starts], 0.5)]
    heard = onsets(out.samples)
    assert len(heard) == 4
    # the same small onset bias on every tone (the threshold), no drift with the pauses
    errors = np.array(mapped) - 0.5 - np.array(heard)
    assert np.ptp(errors) < 0.015, errors
    assert abs(errors.mean()) < 0.04
    uniform = np.array(starts) * said.time_scale - np.array(heard)
    assert np.ptp(uniform) > 2 * np.ptp(errors)  # what a uniform scale would have drifted
