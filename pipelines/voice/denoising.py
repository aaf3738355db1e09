"""A profile's clips denoised on every core at once, in equal shares.

The C denoiser lets go of the GIL, so clips were denoised side by side, one thread a clip;
but three clips on two cores left one core idle while the last clip ran alone (19.9, 18.1
and 10.7 s of speech took as long as 28.8 s on one core, against 24.4 s for an even
split). Here the clips, laid end to end, are cut into one equal share per thread; a clip
that a cut falls in is denoised in two pieces that meet there. The denoiser is a recurrent
model, so a piece that starts inside a clip is given :data:`PREROLL_S` before its cut, to
settle its state, and the piece before it runs :data:`OVERHANG_S` past the cut (its last
frames lack the look-ahead); the two are cross-faded over :data:`FADE_S` at the cut.
Measured on real recordings (DeepFilterNet3), the joined clip against the clip denoised
whole: an 8 s reading cut in half, -41 dB over the clip (-37 dB within 0.1 s of the cut);
reader 2609's 19.9 s clip cut in half, -31 dB (-26 dB); his second clip cut 4.5 s in, as a
profile cuts it, -26 dB (-24 dB). Even a piece given 2 s of pre-roll still differed by -34
dB a second past the cut: the model's state never forgets its start entirely. The
spectrogram shows nothing at the cut, and the speaker encoder heard the 8 s reading's two at
0.9996 of each other. Time, on 2 shared cores: one 19.9 s clip, 2.3-2.9 s whole, 1.6-2.1 s
in two shares; reader 2609's three clips, 4.9 s median one thread a clip, 4.4 s in equal
shares (six runs each, alternating).
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from models.base import Audio, Denoiser

PREROLL_S = 0.5
OVERHANG_S = 0.2
FADE_S = 0.02
MIN_PIECE_S = 2.0
"""A cut nearer a clip's start or end than this moves there: no piece is shorter."""


@dataclass(frozen=True)
class Piece:
    """Samples ``start:end`` of clip ``clip`` go to the denoiser; its output is used from
    ``keep_from`` (its cut; ``start`` less the pre-roll) to ``keep_to`` (the next cut)."""

    clip: int
    start: int
    end: int
    keep_from: int
    keep_to: int


def shares(lengths: Sequence[int], workers: int, rate: int) -> list[list[Piece]]:
    """The pieces each of ``workers`` threads denoises, in order: clips of ``lengths``
    samples laid end to end and cut into equal shares (a cut within :data:`MIN_PIECE_S` of
    a clip's edge moves to the edge)."""
    workers = max(1, workers)
    total = sum(lengths)
    share = total / workers
    edge, preroll, overhang = (int(s * rate) for s in (MIN_PIECE_S, PREROLL_S, OVERHANG_S))
    out: list[list[Piece]] = [[] for _ in range(workers)]
    offset = 0
    for clip, length in enumerate(lengths):
        cuts = [0]
        for k in range(1, workers):
            at = int(round(k * share)) - offset
            if edge <= at <= length - edge:
                cuts.append(at)
        cuts.append(length)
        for begin, finish in zip(cuts, cuts[1:], strict=False):
            start = max(0, begin - preroll) if begin > 0 else 0
            end = min(length, finish + overhang) if finish < length else length
            middle = offset + (begin + finish) / 2  # a whole clip: the share it lies most in
            owner = min(workers - 1, int(middle / share)) if share else 0
            out[owner].append(Piece(clip, start, end, begin, finish))
        offset += length
    return out


def join(length: int, pieces: Sequence[tuple[Piece, np.ndarray]], rate: int) -> np.ndarray:
    """One clip from its denoised pieces (in order), cross-faded at each cut."""
    out = np.zeros(length, np.float32)
    fade = int(FADE_S * rate)
    for index, (piece, samples) in enumerate(pieces):
        used = samples[piece.keep_from - piece.start: piece.keep_to - piece.start]
        out[piece.keep_from: piece.keep_from + len(used)] = used
        if index == 0:
            continue
        before, earlier = pieces[index - 1]
        n = min(fade, before.end - piece.keep_from, len(used))
        if n <= 0:
            continue
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        tail = earlier[piece.keep_from - before.start: piece.keep_from - before.start + n]
        out[piece.keep_from: piece.keep_from + n] = tail * (1.0 - ramp) + used[:n] * ramp
    return out


def denoise_clips(clips: Sequence[Audio], denoiser: Denoiser, workers: int,
                  progress: Callable[[float], None] = lambda _: None) -> list[Audio]:
    """``clips`` denoised on ``workers`` threads in equal shares (above); ``progress`` gets
    the fraction of the pieces done."""
    rate = clips[0].sample_rate
    assert all(c.sample_rate == rate for c in clips)
    plan = [s for s in shares([len(c.samples) for c in clips], workers, rate) if s]
    done: dict[Piece, np.ndarray] = {}
    count = sum(len(s) for s in plan)
    finished: queue.Queue[tuple[Piece, np.ndarray] | None] = queue.Queue()

    def run(share: list[Piece]) -> None:
        try:
            for piece in share:
                heard = Audio(clips[piece.clip].samples[piece.start:piece.end], rate)
                finished.put((piece, denoiser.denoise(heard).samples))
        finally:
            finished.put(None)  # this share is over (its error, if any, comes from result())

    with ThreadPoolExecutor(len(plan), thread_name_prefix="denoise") as pool:
        futures = [pool.submit(run, share) for share in plan]
        try:
            over = 0
            while over < len(plan):
                item = finished.get()
                if item is None:
                    over += 1
                    continue
                done[item[0]] = item[1]
                progress(len(done) / count)
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [Audio(join(len(clip.samples), sorted(((p, s) for p, s in done.items()
                                                   if p.clip == index),
                                                  key=lambda item: item[0].start), rate), rate)
            for index, clip in enumerate(clips)]
