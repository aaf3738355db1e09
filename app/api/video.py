"""`/api/video/*` routes (filled in by the video issue)."""

from __future__ import annotations

from fastapi import APIRouter

from app.services import Services


def create_router(services: Services) -> APIRouter:
    return APIRouter(prefix="/api/video", tags=["video"])
