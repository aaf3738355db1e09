"""PNG plots for the Prosody and BGM tabs: waveform + pitch contour before/after, and the
ducking envelope under the voice. Rendered with matplotlib's Agg backend to a temp file, so
API clients get a plain image path too."""

from __future__ import annotations

import tempfile
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import numpy as np

from app.ui.text import plain, register
from models.base import Audio

if TYPE_CHECKING:  # matplotlib loads only when a plot is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

register(
    en={"plot.amplitude": "amplitude", "plot.before": "before", "plot.after": "after",
        "plot.time": "time (s)", "plot.voice_level": "voice level (dBFS)",
        "plot.speech": "speech", "plot.music_gain": "music gain (dB)"},
    ja={"plot.amplitude": "振幅", "plot.before": "調整前", "plot.after": "調整後",
        "plot.time": "時間（秒）", "plot.voice_level": "声の大きさ（dBFS）",
        "plot.speech": "発話", "plot.music_gain": "音楽の音量（dB）"},
)


def _font_family() -> str | None:
    """A font with Japanese glyphs (the one subtitles use), registered with matplotlib."""
    from matplotlib import font_manager

    from pipelines.video.subtitles import font_path

    try:
        path = font_path()
    except Exception:  # no CJK font: English labels still draw
        return None
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


def _figure(rows: int, height: float) -> tuple[Figure, list[Axes]]:
    """A figure of ``rows`` plots stacked, and those plots top to bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(9, height), constrained_layout=True,
                             squeeze=False)
    plots: list[Axes] = list(axes[:, 0])
    return fig, plots


def _fonts(lang: str) -> AbstractContextManager[None]:
    """Labels in ``lang``'s script: a CJK font first for Japanese (text objects take the font
    when they are made, so the whole figure is drawn inside this context)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    family = _font_family() if lang != "en" else None
    return plt.rc_context({"font.family": [family, "DejaVu Sans"]} if family else {})


def _save(fig: Figure) -> str:
    import matplotlib.pyplot as plt

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
                 f0_after: tuple[np.ndarray, np.ndarray], lang: str = "en") -> str:
    """Top: waveform envelopes; bottom: F0 contours (Hz, unvoiced frames left out)."""
    with _fonts(lang):
        return _prosody_plot(before, after, f0_before, f0_after, lang)


def _prosody_plot(before: Audio, after: Audio, f0_before: tuple[np.ndarray, np.ndarray],
                  f0_after: tuple[np.ndarray, np.ndarray], lang: str) -> str:
    fig, (wave_ax, pitch_ax) = _figure(2, 5.0)
    was, now = plain("plot.before", lang), plain("plot.after", lang)
    for audio, label, color in ((before, was, "#999999"), (after, now, "#d6336c")):
        t, env = _envelope(audio)
        wave_ax.fill_between(t, -env, env, color=color, alpha=0.55, label=label, linewidth=0)
    wave_ax.set_ylabel(plain("plot.amplitude", lang))
    wave_ax.set_ylim(-1, 1)
    wave_ax.legend(loc="upper right")
    for (times, f0), label, color in ((f0_before, was, "#666666"), (f0_after, now, "#d6336c")):
        voiced = np.where(f0 > 0, f0, np.nan)
        pitch_ax.plot(times, voiced, ".", markersize=2.5, color=color, label=label)
    pitch_ax.set_ylabel("F0 (Hz)")
    pitch_ax.set_xlabel(plain("plot.time", lang))
    pitch_ax.legend(loc="upper right")
    return _save(fig)


def ducking_plot(times: np.ndarray, gain_db: np.ndarray, voice_db: np.ndarray,
                 speech: np.ndarray, lang: str = "en") -> str:
    """The voice's level with speech marked, and the music's ducking gain over it."""
    with _fonts(lang):
        return _ducking_plot(times, gain_db, voice_db, speech, lang)


def _ducking_plot(times: np.ndarray, gain_db: np.ndarray, voice_db: np.ndarray,
                  speech: np.ndarray, lang: str) -> str:
    fig, (ax,) = _figure(1, 3.6)
    ax.plot(times, np.maximum(voice_db, -80), color="#999999", linewidth=0.8,
            label=plain("plot.voice_level", lang))
    ax.fill_between(times, -80, 0, where=speech, color="#74c0fc", alpha=0.25,
                    label=plain("plot.speech", lang), linewidth=0)
    ax.plot(times, gain_db, color="#d6336c", linewidth=1.8, label=plain("plot.music_gain", lang))
    ax.set_ylim(-80, 3)
    ax.set_xlabel(plain("plot.time", lang))
    ax.set_ylabel("dB")
    ax.legend(loc="lower right")
    return _save(fig)
