"""Queuing the search for a profile's evolved voice (REST, UI and the profile use case).

``POST /api/voice/profiles/{id}/evolve`` (or the Voice tab's button) queues it; queued
again, it resumes a paused or interrupted search from its checkpoint. With
``STUDIO_VOICE_EVOLVE_AUTO=1`` a new profile queues it by itself right behind its own job
(off by default: it takes minutes of every core). It is never queued automatically where
jobs run inline as they are submitted (an immediate queue): there the search would hold
the request that made the profile for minutes.
"""

from __future__ import annotations

import time
from typing import Any

from app.config import Settings
from app.runner.jobs import Job, Jobs
from app.runner.queue import TaskQueue
from app.usecases.tasks import progress_fields
from models.errors import NotFound
from pipelines.voice.evolve_jobs import KIND as EVOLVE_KIND
from pipelines.voice.evolve_jobs import STEPS as EVOLVE_STEPS
from pipelines.voice.evolved import LABEL, LABEL_JA, QuickMatchStore
from pipelines.voice.jobs import profile_id_for
from pipelines.voice.profiles import ProfileStore

EVOLVE_PRIORITY = 0
"""Below nothing: a message or a profile queued later still runs first (the search also
makes way for work that arrives while it runs)."""


def submit_evolution(settings: Settings, queue: TaskQueue, profile_id: str, *,
                     owner: str | None, budget_s: float | None = None,
                     wait_for_profile: bool = False) -> Job:
    """Queue a ``voice.evolve`` job for ``profile_id`` (which the caller may see); the
    budget defaults to ``STUDIO_VOICE_EVOLVE_SECONDS``."""
    budget = float(budget_s or settings.voice_evolve_seconds)
    params: dict[str, Any] = {"profile_id": profile_id, "budget_s": budget, "owner": owner}
    if wait_for_profile:
        params["submitted_at"] = time.time()
    return queue.submit(EVOLVE_KIND, params, owner=owner, priority=EVOLVE_PRIORITY)


def evolve_after_profile(settings: Settings, queue: TaskQueue, profile_job: Job,
                         owner: str | None) -> Job | None:
    """Queue the search for the profile ``profile_job`` makes (when the settings say so)."""
    if not settings.voice_evolve_auto or queue.huey.immediate:
        return None
    return submit_evolution(settings, queue, profile_id_for(profile_job.id), owner=owner,
                            wait_for_profile=True)


def evolution_answer(job: Job) -> dict[str, Any]:
    """What REST and the UI say about a queued search."""
    return {"task_id": job.id, "status": job.status, "kind": EVOLVE_KIND,
            "steps": list(EVOLVE_STEPS), "status_url": f"/api/voice/status/{job.id}",
            "profile_id": job.params.get("profile_id"), "budget_s": job.params.get("budget_s")}


def evolve_answer(job: Job) -> dict[str, Any]:
    """REST's answer for a queued search: :func:`evolution_answer` with its label."""
    return {**evolution_answer(job), "label": LABEL, "label_ja": LABEL_JA}


def evolution_status_view(store: ProfileStore, job: Job) -> dict[str, Any]:
    """The search as the voice status route shows it: progress, the step with the current
    best held-out score, the profile's live record (``evolution``, from ``store``) and,
    when done, the result."""
    data = progress_fields(job)
    data.update(kind=EVOLVE_KIND, profile_id=job.params.get("profile_id"), label=LABEL,
                label_ja=LABEL_JA)
    try:
        profile = store.get(str(job.params.get("profile_id")))
    except NotFound:
        data["evolution"] = data["voice_source"] = None
    else:
        data["evolution"] = profile.evolution
        data["voice_source"] = profile.voice_source
    if job.status == "completed":
        data["result"] = job.result
    if job.error:
        data["error"] = job.error
    return data


def latest_search(jobs: Jobs, profile_id: str) -> Job | None:
    """The newest search for the profile, if any."""
    return next((j for j in jobs.list(kind=EVOLVE_KIND, limit=1_000_000)
                 if j.params.get("profile_id") == profile_id), None)


def before_search(store: ProfileStore) -> ProfileStore:
    """The profiles as the quick match left them (the evolved voice not serving): what the
    profile sounded like before its search."""
    return QuickMatchStore(store.storage, store.can_see)
