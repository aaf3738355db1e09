"""`/api/image/*` routes (filled in by the image issue)."""

from __future__ import annotations

from fastapi import APIRouter

from app.services import Services


def create_router(services: Services) -> APIRouter:
    return APIRouter(prefix="/api/image", tags=["image"])
