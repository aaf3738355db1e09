"""The voice profile panel's words and waiting: the clips' verdicts, what a new profile
sounds like next to the recordings, and following its job to the end."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.runner.jobs import Jobs
from app.runner.queue import TaskQueue
from app.ui.owners import UiState
from app.ui.text import plain, word
from app.ui.work import Recorder
from app.usecases.voices import Voices
from models.errors import StudioError


@dataclass(frozen=True)
class VoiceDesk:
    """The Voice tab's parts (its evolved-voice panel's too): the voice use cases, the
    jobs it follows, the queue that cancels a search, who is asking, its job records."""

    voices: Voices
    jobs: Jobs
    queue: TaskQueue
    state: UiState
    record: Recorder


def clip_paths(files: Any, mic: Any) -> list[str]:
    out = []
    for item in (files or []):
        out.append(item if isinstance(item, str) else getattr(item, "name", str(item)))
    if mic:
        out.append(mic if isinstance(mic, str) else getattr(mic, "name", str(mic)))
    return out


def clip_rows(clips: list[dict[str, Any]], lang: str = "en") -> list[list[Any]]:
    """Each clip's verdict and note in the page's language (a clip's record as stored)."""
    return [[c["filename"], word("verdict.", str(c["verdict"]), lang), round(c["duration"], 1),
             round(c["speech_seconds"], 1), round(max(c["snr_db"], c["snr_after_db"] or 0), 1),
             (c.get("message_ja") if lang == "ja" else None) or c.get("message")
             or ", ".join(word("clip.", w, lang) for w in c.get("warnings") or ())]
            for c in clips]


def profile_summary(profile: dict[str, Any], lang: str, seconds: Any,
                    voice_name: Callable[[str | None], str]) -> str:
    """What people read when their profile is made: one line per fact (more can be
    added here), in the page's language; ``voice_name`` names a built-in voice or blend."""
    done_in = f" ({seconds:.1f} s)" if isinstance(seconds, int | float) else ""
    lines = [plain("voice.ready", lang).format(name=profile["name"]) + done_in]
    matching = profile.get("matching") or {}
    if matching:
        if not profile.get("serving"):
            # measured on three axes instead, serving_summary names the voice that speaks in
            # each language; the voice matching was calibrated on is often not that one
            lines.append(plain("voice.closest", lang).format(
                voice=voice_name(matching.get("source_voice"))))
            lines.append(nearness_line(matching.get("similarity") or {}, lang))
        lines.append(f"({plain('voice.not_cloning', lang)})")
    return "\n\n".join(line for line in lines if line)


def nearness_line(similarity: dict[str, Any], lang: str) -> str:
    """"How near it sounds to your recordings: 46 % as the built-in voice → 55 % after voice
    matching → 64 % rebuilt from your recordings' sounds — this one speaks for the profile".
    The values are the voice measure's similarity (cosine of the speaker embeddings) to the
    profile's recordings; ``serves`` names the converter chosen because it came nearer."""
    steps: list[tuple[str, Any]] = [("source", similarity.get("source")),
                                    ("matched", similarity.get("matched"))]
    if similarity.get("served") is not None:
        steps.append(("served", similarity["served"]))
    serving = "served" if similarity.get("served") is not None and similarity.get(
        "serves", similarity.get("served_by")) == similarity.get("served_by") else "matched"
    shown = [plain(f"voice.near.{step}", lang).format(value=f"{round(float(value) * 100)} %")
             + (plain("voice.near.serves", lang) if step == serving and len(steps) > 2 else "")
             for step, value in steps if isinstance(value, int | float)]
    return plain("voice.nearness", lang).format(steps=" → ".join(shown)) if shown else ""


def wait_for_profile(jobs: Jobs, job_id: str, progress: Any, lang: str,
                     poll_s: float = 0.25) -> Any:
    """Follow a ``voice.profile`` job until it ends, passing its progress and step on to the
    page (or to ``gradio_client``'s ``job.status()``). A failure comes back as the
    StudioError the job recorded (with the clips' verdicts in its details)."""
    progress(0.0, desc=plain("voice.step.queued", lang))
    while True:
        job = jobs.get(job_id)
        if job.status == "completed":
            progress(1.0, desc=plain("voice.step.save", lang))
            return job
        if job.status in ("failed", "cancelled"):
            error = job.error or {"code": "QUEUE_JOB_CANCELLED", "message": "cancelled"}
            raise StudioError(error.get("message") or "", code=error.get("code"),
                              message_ja=error.get("message_ja"),
                              details=error.get("details") or {})
        step = job.current_step if job.status == "processing" else "queued"
        progress(job.progress / 100.0, desc=plain(f"voice.step.{step or 'queued'}", lang))
        time.sleep(poll_s)
