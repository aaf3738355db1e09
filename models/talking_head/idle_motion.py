"""Seeded, smooth "alive" motion for a still portrait: blinks, head sway, breathing.

Same seed and length give the same motion. Blinks come every 2-6 s and last 0.1-0.3 s
(eyes close quickly and open more slowly); head motion is a sum of a few slow sinusoids with
random phases plus a small nod that follows the speech loudness; breathing is a 0.2-0.3 Hz
rise and fall of the shoulders and head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IdleTrack:
    blink: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    roll: np.ndarray
    breath: np.ndarray
    blinks: tuple[tuple[float, float], ...]  # (start, duration) in seconds


def blink_schedule(duration: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(start, length) of each blink: first after 0.6-2.5 s, then gaps of 2-6 s."""
    out = []
    t = float(rng.uniform(0.6, 2.5))
    while t < duration - 0.1:
        length = float(rng.uniform(0.1, 0.3))
        out.append((t, length))
        t += length + float(rng.uniform(2.0, 6.0))
    return out


def _blink_curve(n: int, fps: int, blinks: list[tuple[float, float]]) -> np.ndarray:
    curve = np.zeros(n, np.float32)
    times = np.arange(n) / fps
    for start, length in blinks:
        close = 0.4 * length
        t = times - start
        closing = (t >= 0) & (t < close)
        opening = (t >= close) & (t < length)
        curve[closing] = np.maximum(curve[closing], np.sin(0.5 * np.pi * t[closing] / close))
        back = (t[opening] - close) / (length - close)
        curve[opening] = np.maximum(curve[opening], np.cos(0.5 * np.pi * back) ** 1.5)
        # A short blink must still shut the eye on at least one frame.
        hit = int(np.clip(round((start + close) * fps), 0, n - 1))
        if start + close < n / fps:
            curve[hit] = 1.0
    return curve


def _wander(n: int, fps: int, rng: np.random.Generator, freqs: tuple[float, ...]) -> np.ndarray:
    t = np.arange(n) / fps
    out = np.zeros(n)
    for f in freqs:
        f = f * rng.uniform(0.8, 1.25)
        out += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.6, 1.0)
    return out / max(1.0, len(freqs) * 0.7)


def idle_track(n: int, fps: int, seed: int, face_height: float,
               envelope: np.ndarray | None = None) -> IdleTrack:
    rng = np.random.default_rng(seed)
    blinks = blink_schedule(n / fps, rng)
    scale = face_height / 240.0
    dx = _wander(n, fps, rng, (0.07, 0.17, 0.31)) * 3.0 * scale
    dy = _wander(n, fps, rng, (0.09, 0.23)) * 1.6 * scale
    roll = _wander(n, fps, rng, (0.06, 0.19)) * 1.4
    if envelope is not None and len(envelope) == n:
        k = max(1, min(n, int(0.25 * fps)))
        nod = np.convolve(envelope, np.ones(k) / k, mode="same")
        dy = dy + (nod - nod.mean()) * 1.5 * scale
    rate = rng.uniform(0.2, 0.3)
    t = np.arange(n) / fps
    breath = (0.5 - 0.5 * np.cos(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))) * 1.4 * scale
    # Start from rest so the first frame is the photo itself (bar the framing).
    ramp = np.clip(t / 0.6, 0, 1)
    return IdleTrack(_blink_curve(n, fps, blinks), (dx * ramp).astype(np.float32),
                     (dy * ramp).astype(np.float32), (roll * ramp).astype(np.float32),
                     (breath * ramp).astype(np.float32), tuple(blinks))
