"""`/api/voice/profiles/{id}/evolve` and the search's view on `/api/voice/status/{task_id}`.

The evolved voice is a built-in Kokoro voice moved by a search until it sounds like the
profile's recordings: answers say so (``label``) and carry the scores, never "clone".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.envelope import ok
from app.api.security import owner_of
from app.api.task_view import progress_fields
from app.runner.jobs import Job
from app.services import Services
from app.usecases.voice_evolve import evolution_answer, submit_evolution
from app.usecases.voices import voice_kit
from models.errors import NotFound
from pipelines.voice.evolve_jobs import KIND as EVOLVE_KIND
from pipelines.voice.evolved import LABEL, LABEL_JA


class EvolveRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    budget_s: float | None = Field(None, gt=0, le=7200)


def evolution_status_view(services: Services, job: Job) -> dict[str, Any]:
    """The search as the voice status route shows it: progress, the step with the current
    best held-out score, the profile's live record (``evolution``) and, when done, the
    result."""
    data = progress_fields(job)
    data.update(kind=EVOLVE_KIND, profile_id=job.params.get("profile_id"), label=LABEL,
                label_ja=LABEL_JA)
    try:
        profile = voice_kit(services).store.get(str(job.params.get("profile_id")))
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


def add_routes(router: APIRouter, services: Services,
               visible: Callable[[Request], Any]) -> None:
    """Add the evolve route to the voice router (``visible(request)``: the caller's store)."""

    @router.post("/profiles/{profile_id}/evolve", status_code=202)
    def evolve_profile(profile_id: str, request: Request,
                       body: EvolveRequest | None = None) -> JSONResponse:
        """Queue the search for an evolved built-in voice (202); it resumes a paused or
        interrupted one. Follow it at ``status_url``."""
        visible(request).get(profile_id)  # someone else's profile: not found
        job = submit_evolution(services, profile_id, owner=owner_of(request),
                               budget_s=body.budget_s if body else None)
        return ok({**evolution_answer(job), "label": LABEL, "label_ja": LABEL_JA},
                  status_code=202)
