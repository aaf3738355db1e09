"""`/api/prosody/*` routes (filled in by the prosody issue)."""

from __future__ import annotations

from fastapi import APIRouter

from app.services import Services


def create_router(services: Services) -> APIRouter:
    return APIRouter(prefix="/api/prosody", tags=["prosody"])
