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

from app.runner.jobs import Job
from app.services import Services
from pipelines.voice.evolve_jobs import KIND as EVOLVE_KIND
from pipelines.voice.evolve_jobs import STEPS as EVOLVE_STEPS
from pipelines.voice.jobs import profile_id_for

EVOLVE_PRIORITY = 0
"""Below nothing: a message or a profile queued later still runs first (the search also
makes way for work that arrives while it runs)."""


def submit_evolution(services: Services, profile_id: str, *, owner: str | None,
                     budget_s: float | None = None, wait_for_profile: bool = False) -> Job:
    """Queue a ``voice.evolve`` job for ``profile_id`` (which the caller may see)."""
    budget = float(budget_s or services.settings.voice_evolve_seconds)
    params: dict[str, Any] = {"profile_id": profile_id, "budget_s": budget, "owner": owner}
    if wait_for_profile:
        params["submitted_at"] = time.time()
    return services.queue.submit(EVOLVE_KIND, params, owner=owner, priority=EVOLVE_PRIORITY)


def evolve_after_profile(services: Services, profile_job: Job, owner: str | None
                         ) -> Job | None:
    """Queue the search for the profile ``profile_job`` makes (when the settings say so)."""
    if not services.settings.voice_evolve_auto or services.queue.huey.immediate:
        return None
    return submit_evolution(services, profile_id_for(profile_job.id), owner=owner,
                            wait_for_profile=True)


def evolution_answer(job: Job) -> dict[str, Any]:
    """What REST and the UI say about a queued search."""
    return {"task_id": job.id, "status": job.status, "kind": EVOLVE_KIND,
            "steps": list(EVOLVE_STEPS), "status_url": f"/api/voice/status/{job.id}",
            "profile_id": job.params.get("profile_id"), "budget_s": job.params.get("budget_s")}
