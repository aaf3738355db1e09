"""What the Message tab says while a message is made and after: the time left, a step in
people's words, a history caption, and how the message was made."""

from __future__ import annotations

import time
from typing import Any

from app.i18n import step_text
from app.ui.fallback import Chosen, engine_name, passed_over_notes
from app.ui.text import plain, shown_time, word

SHORT_ID = 12  # the history caption's job id; the pick finds the whole id


class Clock:
    """How long a job still needs, from how fast its progress has moved since it started
    working (a message of 1000 characters crept for minutes with no word of the end)."""

    def __init__(self) -> None:
        self.start: tuple[float, float] | None = None  # (time, fraction) of the first report

    def left(self, fraction: float, now: float | None = None) -> float | None:
        """Seconds left, once the job has run 5 s and moved 3 %; None before."""
        now = time.monotonic() if now is None else now
        if self.start is None:
            self.start = (now, fraction)
            return None
        began, first = self.start
        elapsed, moved = now - began, fraction - first
        if elapsed < 5.0 or moved < 0.03 or fraction >= 1.0:
            return None
        return (1.0 - fraction) * elapsed / moved


def time_left(seconds: float, lang: str = "en") -> str:
    """"about 40 s left", "about 3 min left" (rounded: an estimate, not a promise)."""
    if seconds < 60:
        return plain("message.left_s", lang).format(n=max(5, int(round(seconds / 5.0)) * 5))
    return plain("message.left_min", lang).format(n=int(round(seconds / 60.0)))


def history_caption(created_at: float, text: str | None, job_id: str, lang: str = "en",
                    words: int = 24) -> str:
    """"2026年11月30日 05:12 · お誕生日おめでとう…" then the job id (the gallery's pick reads
    it); the date in the form every tab uses."""
    when = shown_time(created_at, lang)
    first = " ".join((text or "").split())
    first = first if len(first) <= words else first[:words].rstrip() + "…"
    return f"{when} · {first}\n#{job_id[:SHORT_ID]}"


def step_description(step: str | None, status: str, lang: str) -> str | None:
    """A person's words for the job's current step: ``"image,voice"`` (two branches side by
    side) reads as both names; ``"video: render"`` as the stage's name. None between stages
    (the caller keeps the last description rather than flashing "queued")."""
    if status == "queued":
        return plain("message.waiting", lang)
    if not step or step in ("queued", "done"):
        return None
    return step_text(step, lang) or None


def describe(result: dict[str, Any], lang: str = "en", chosen: Chosen | None = None) -> str:
    """How the message was made, in the page's language: each step's engine in people's
    words, then a note for each engine the operator chose that was passed over (``chosen``:
    :func:`app.ui.fallback.operator_choices`; a default install has none)."""
    engines = result.get("engines") or {}
    image = engines.get("image") or {}
    refiner = image.get("matte_refinement") or image.get("sam2_refinement")  # older results
    voice = engines.get("voice") or {}
    # a built-in voice's "conversion" is plain synthesis ("tts"): only a profile's is shown
    conversion = voice.get("conversion") if voice.get("conversion") not in (None, "tts") else None
    mood = result.get("emotion")
    lines = [f"- {plain('message.note_video', lang)}: "
             f"**{engine_name('talking_head', engines.get('video'), lang)}**",
             f"- {plain('message.note_voice', lang)}: "
             f"**{engine_name('tts', voice.get('tts'), lang)}**"
             + (f" → {engine_name('voice_converter', conversion, lang)}" if conversion else ""),
             f"- {plain('message.note_cutout', lang)}: "
             f"**{engine_name('cutout', image.get('background_removal'), lang)}**, "
             f"{plain('message.note_refine', lang)}: "
             f"**{engine_name('refiner', refiner, lang)}**",
             f"- {plain('message.note_mood', lang)}: {word('mood.', str(mood), lang)} · "
             f"{plain('message.note_length', lang)} {_seconds(result.get('duration'))} · "
             f"{str(result.get('size')).replace('x', '×')} · "
             f"{plain('message.note_took', lang)} {_seconds(result.get('processing_time'))}"]
    lines += [f"- ⚠ {note}" for note in
              passed_over_notes(result.get("passed_over") or (), chosen or {}, lang)]
    return "\n".join(lines)


def _seconds(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, int | float) else "–"
