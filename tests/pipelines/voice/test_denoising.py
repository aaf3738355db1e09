"""A profile's clips are denoised in equal shares, one per thread: the pieces cover each clip
once, the shares are even, and a clip cut in two comes out as the clip denoised whole."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from models.base import Audio
from models.errors import InvalidInput
from models.voice.denoise import DeepFilterDenoiser
from pipelines.voice.denoising import MIN_PIECE_S, OVERHANG_S, PREROLL_S, denoise_clips, shares
from tests.conftest import unavailable

RATE = 24000
CLIP = Path(__file__).parents[2] / "fixtures" / "data" / "librispeech_1998-15444-0002_8s.flac"


def seconds(*lengths: float) -> list[int]:
    return [int(s * RATE) for s in lengths]


@pytest.mark.parametrize("lengths", [(19.9, 18.1, 10.7), (11.7, 10.0, 9.4), (13.3, 9.1, 8.4),
                                     (22.8, 16.5, 14.7), (8.0,), (5.0, 5.0, 5.0, 5.0, 5.0)])
@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_the_pieces_cover_every_clip_once_and_the_shares_are_even(
        lengths: tuple[float, ...], workers: int) -> None:
    samples = seconds(*lengths)
    plan = shares(samples, workers, RATE)
    assert len(plan) == workers
    pieces = [p for share in plan for p in share]
    for clip, length in enumerate(samples):
        own = sorted((p for p in pieces if p.clip == clip), key=lambda p: p.keep_from)
        assert own[0].keep_from == 0 and own[-1].keep_to == length
        for before, after in zip(own, own[1:], strict=False):
            assert before.keep_to == after.keep_from  # no gap, no overlap in what is kept
            assert after.keep_to - after.keep_from >= MIN_PIECE_S * RATE
            assert after.start == after.keep_from - int(PREROLL_S * RATE)
            assert before.end == before.keep_to + int(OVERHANG_S * RATE)
        for piece in own:
            assert 0 <= piece.start <= piece.keep_from < piece.keep_to <= piece.end <= length
    work = [sum(p.end - p.start for p in share) for share in plan]
    # a share is even but for a cut moved to a clip's edge at either end, and the pre-roll
    # and overhang of the pieces it was cut into
    slack = (2 * MIN_PIECE_S + PREROLL_S + OVERHANG_S) * RATE
    assert max(work) <= sum(samples) / workers + slack


def test_three_clips_on_two_threads_are_cut_once() -> None:
    plan = shares(seconds(19.9, 18.1, 10.7), 2, RATE)
    first, second = ([(p.clip, p.keep_from, p.keep_to) for p in share] for share in plan)
    cut = int(round(sum(seconds(19.9, 18.1, 10.7)) / 2)) - seconds(19.9)[0]
    assert first == [(0, 0, seconds(19.9)[0]), (1, 0, cut)]
    assert second == [(1, cut, seconds(18.1)[0]), (2, 0, seconds(10.7)[0])]


@pytest.fixture(scope="module")
def speech() -> Audio:
    denoiser = DeepFilterDenoiser()
    if not denoiser.available()[0]:
        unavailable(denoiser.available()[1])
    samples, rate = sf.read(CLIP, dtype="float32")
    from models.speech.dsp import resample_array

    return Audio(resample_array(samples, int(rate), RATE), RATE)


def test_a_clip_cut_in_two_comes_out_as_the_clip_denoised_whole(speech: Audio) -> None:
    denoiser = DeepFilterDenoiser()
    whole = denoiser.denoise(speech).samples
    (joined,) = denoise_clips([speech], denoiser, 2)
    cut = len(speech.samples) // 2
    assert [len(s) for s in shares([len(speech.samples)], 2, RATE)] == [1, 1]

    def db(a: np.ndarray, b: np.ndarray) -> float:
        return float(10 * np.log10(np.sum((a - b) ** 2) / np.sum(b ** 2)))

    near = slice(cut - RATE // 10, cut + RATE // 10)
    assert db(joined.samples, whole) < -30.0  # measured -41 dB
    assert db(joined.samples[near], whole[near]) < -25.0  # -37 dB within 0.1 s of the cut
    # no click where the pieces meet: no sample step there larger than the whole clip's
    around = slice(cut - RATE // 50, cut + RATE // 50)
    assert np.abs(np.diff(joined.samples[around])).max() <= \
        1.2 * np.abs(np.diff(whole[around])).max()


def test_progress_is_told_piece_by_piece(speech: Audio) -> None:
    heard: list[float] = []
    denoise_clips([speech, speech, speech], DeepFilterDenoiser(), 2, heard.append)
    assert heard == sorted(heard) and heard[-1] == 1.0 and len(heard) == 4  # one clip is cut


class Failing:
    """A denoiser that fails on its second piece, in whichever thread."""

    name = "failing"

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        return True, ""

    def close(self) -> None:
        pass

    def denoise(self, audio: Audio) -> Audio:
        with self.lock:
            self.calls += 1
            if self.calls == 2:
                raise InvalidInput("bad piece", code="VOICE_SAMPLE_INVALID")
        return audio


def test_a_failing_piece_fails_the_whole_and_nothing_hangs() -> None:
    clips = [Audio(np.zeros(s, np.float32), RATE) for s in seconds(6.0, 5.0, 4.0)]
    failing = Failing()
    with pytest.raises(InvalidInput, match="bad piece"):
        denoise_clips(clips, failing, 2)
    assert failing.calls <= 3  # each piece at most once; no thread is left waiting
    assert not [t for t in threading.enumerate() if t.name.startswith("denoise")]
