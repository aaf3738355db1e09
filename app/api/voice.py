"""`/api/voice/*` routes (filled in by the voice issue)."""

from __future__ import annotations

from fastapi import APIRouter

from app.services import Services


def create_router(services: Services) -> APIRouter:
    return APIRouter(prefix="/api/voice", tags=["voice"])
