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
from app.api.schemas import ERRORS, Envelope, EvolveAccepted
from app.api.security import owner_of
from app.usecases.voices import Voices


class EvolveRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    budget_s: float | None = Field(None, gt=0, le=7200)


def add_routes(router: APIRouter, voices: Voices,
               visible: Callable[[Request], Any]) -> None:
    """Add the evolve route to the voice router (``visible(request)``: the caller's store)."""

    @router.post("/profiles/{profile_id}/evolve", status_code=202,
                 response_model=Envelope[EvolveAccepted], responses=ERRORS)
    def evolve_profile(profile_id: str, request: Request,
                       body: EvolveRequest | None = None) -> JSONResponse:
        """Queue the search for an evolved built-in voice (202); it resumes a paused or
        interrupted one. Follow it at ``status_url``."""
        visible(request).get(profile_id)  # someone else's profile: not found
        return ok(voices.submit_evolution(profile_id, owner=owner_of(request),
                                          budget_s=body.budget_s if body else None),
                  status_code=202)
