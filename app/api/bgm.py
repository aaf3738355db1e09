"""`/api/bgm/*` routes (filled in by the bgm issue)."""

from __future__ import annotations

from fastapi import APIRouter

from app.services import Services


def create_router(services: Services) -> APIRouter:
    return APIRouter(prefix="/api/bgm", tags=["bgm"])
