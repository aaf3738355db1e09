"""PNG plots for the Prosody and BGM tabs: waveform + pitch contour before/after, and the
ducking envelope under the voice. Rendered with matplotlib's Agg backend to a temp file, so
API clients get a plain image path too."""

from __future__ import annotations

import tempfile

import numpy as np

from models.base import Audio


def _figure(rows: int, height: float):  # noqa: ANN202 - matplotlib types stay local
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(9, height), constrained_layout=True)
    return plt, fig, axes


def _save(plt, fig) -> str:  # noqa: ANN001
    handle = tempfile.NamedTemporaryFile(prefix="studio-plot-", suffix=".png", delete=False)
    fig.savefig(handle.name, dpi=90)
    plt.close(fig)
    return handle.name


def _envelope(audio: Audio, points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    x = audio.samples
    step = max(1, x.size // points)
    count = x.size // step
    peaks = np.abs(x[: count * step]).reshape(count, step).max(axis=1) if count else np.zeros(0)
    return np.arange(count) * step / audio.sample_rate, peaks


def prosody_plot(before: Audio, after: Audio, f0_before: tuple[np.ndarray, np.ndarray],
                 f0_after: tuple[np.ndarray, np.ndarray]) -> str:
    """Top: waveform envelopes; bottom: F0 contours (Hz, unvoiced frames left out)."""
    plt, fig, (wave_ax, pitch_ax) = _figure(2, 5.0)
    for audio, label, color in ((before, "before", "#999999"), (after, "after", "#d6336c")):
        t, env = _envelope(audio)
        wave_ax.fill_between(t, -env, env, color=color, alpha=0.55, label=label, linewidth=0)
    wave_ax.set_ylabel("amplitude")
    wave_ax.set_ylim(-1, 1)
    wave_ax.legend(loc="upper right")
    for (times, f0), label, color in ((f0_before, "before", "#666666"),
                                      (f0_after, "after", "#d6336c")):
        voiced = np.where(f0 > 0, f0, np.nan)
        pitch_ax.plot(times, voiced, ".", markersize=2.5, color=color, label=label)
    pitch_ax.set_ylabel("F0 (Hz)")
    pitch_ax.set_xlabel("time (s)")
    pitch_ax.legend(loc="upper right")
    return _save(plt, fig)


def ducking_plot(times: np.ndarray, gain_db: np.ndarray, voice_db: np.ndarray,
                 speech: np.ndarray) -> str:
    """The voice's level with speech marked, and the music's ducking gain over it."""
    plt, fig, ax = _figure(1, 3.6)
    ax.plot(times, np.maximum(voice_db, -80), color="#999999", linewidth=0.8,
            label="voice level (dBFS)")
    ax.fill_between(times, -80, 0, where=speech, color="#74c0fc", alpha=0.25,
                    label="speech", linewidth=0)
    ax.plot(times, gain_db, color="#d6336c", linewidth=1.8, label="music gain (dB)")
    ax.set_ylim(-80, 3)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("dB")
    ax.legend(loc="lower right")
    return _save(plt, fig)
