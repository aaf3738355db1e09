"""The queued ``voice.evolve`` job: search an evolved Kokoro voice for one profile.

Params: ``profile_id``, ``budget_s`` (search seconds in all, across resumed runs),
``owner``, ``seed``, ``submitted_at`` (wall clock) and ``min_run_s``. The job

* reports progress (the share of the budget spent) with the iteration and the current best
  held-out score in ``current_step``, and keeps the live record on the profile
  (``Profile.evolution``) for the Voice tab;
* is cancelled through ``ctx.progress`` (checked after every step);
* resumes: the search state is checkpointed next to the profile, so a rerun (after a
  crash, a cancel or making way) goes on from the last checkpoint;
* makes way: after ``min_run_s`` of its own work, when other jobs are queued or running
  (a message being made), it checkpoints and raises :class:`MakeWay`; the queue runs it
  again :data:`MAKE_WAY_DELAY_S` later, so the other work has the cores meanwhile (and
  after :data:`MAX_RUN_S` in any case, so no run meets the queue's job time limit);
* waits for its profile: queued together with a profile job, it makes way (a few seconds
  later) until the profile exists, and gives up after :data:`PROFILE_WAIT_S`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from models.base import Audio
from models.errors import NotFound
from pipelines.tasks import JobContext, JobKind, MakeWay
from pipelines.voice.evolved import QuickMatchStore, evolve_profile
from pipelines.voice.profiles import ProfileStore
from pipelines.voice.ref import VoiceRef
from pipelines.voice.serving import naturalness_guards, naturalness_judge
from pipelines.voice.speech import VoiceChoice, profile_finisher, synthesize

KIND = "voice.evolve"
STEPS = ["search"]
DEFAULT_BUDGET_S = 600.0
MIN_RUN_S = 20.0
PROFILE_WAIT_S = 1800.0
PROFILE_POLL_S = 5.0
MAKE_WAY_DELAY_S = 15.0
"""How long a search that made way stays off the queue before it looks again."""
MAX_RUN_S = 1200.0
"""One run's longest stretch: a longer budget goes on in later runs (each run of a job has
the queue's job time limit, 30 minutes by default)."""


def evolve_profile_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    storage = ctx.storage
    store = ProfileStore(storage)
    profile_id = str(params["profile_id"])
    try:
        profile = store.get(profile_id)
    except NotFound:
        waited = time.time() - float(params.get("submitted_at") or 0.0)
        if params.get("submitted_at") and waited < PROFILE_WAIT_S:
            raise MakeWay("search: waiting for the profile", delay=PROFILE_POLL_S) from None
        raise
    budget = float(params.get("budget_s") or DEFAULT_BUDGET_S)
    min_run = float(params.get("min_run_s", MIN_RUN_S))
    tts, converters, encoder = ctx.chain("tts"), ctx.chain("voice_converter"), \
        ctx.chain("voice_encoder")
    started = time.monotonic()

    def embed(audio: Audio) -> np.ndarray:
        return np.asarray(encoder.run(lambda e: e.embed([audio])).value, np.float32)

    def say_quick(text: str, language: str) -> Audio:
        speech, _ = synthesize(text, tts=tts, choice=VoiceChoice.of(VoiceRef("profile", profile_id)),
                               language=language, profiles=QuickMatchStore(storage),
                               converters=converters)
        return speech.audio

    def pause() -> bool:
        ran = time.monotonic() - started
        return ran >= MAX_RUN_S or (ran >= min_run and ctx.others_waiting())

    def on_step(record: dict[str, Any]) -> None:
        best = record["best"]["held_out"]
        ctx.progress(min(record["seconds"] / budget, 0.99),
                     f"search: iteration {record['iteration']} best {best:.3f} "
                     f"(quick match {record['quick']['held_out']:.3f})")
        if record["iteration"] % 3 == 0:
            store.set_evolution(profile_id, record)

    ctx.progress(0.0, "search")
    outcome = evolve_profile(profile=profile, store=store, tts=tts, embed=embed,
                             say_quick=say_quick, budget_s=budget,
                             seed=int(params.get("seed") or 0), pause=pause, on_step=on_step,
                             finish=profile_finisher(profile, store, converters),
                             on_start=lambda what: ctx.progress(0.0, f"search: measuring {what}"),
                             naturalness=_naturalness(ctx),
                             guards=[(g.name, g.naturalness)
                                     for g in naturalness_guards(ctx.chain("naturalness"))])
    if not outcome.finished:
        raise MakeWay(f"search: paused at iteration {outcome.record['iteration']} "
                      "(other work first)", delay=MAKE_WAY_DELAY_S)
    ctx.step_done("search")
    return {"profile_id": profile_id, "evolution": outcome.record,
            "voice_source": outcome.record.get("voice_source")}


JOB = JobKind(KIND, STEPS, handler=evolve_profile_job)


def _naturalness(ctx: JobContext) -> Callable[[Audio], float] | None:
    """The naturalness predictor the profile's serving measure uses, when one works here."""
    judge = naturalness_judge(ctx.chain("naturalness"))
    return judge.naturalness if judge is not None else None
