"""Fixtures for the image tests: portraits with known alpha, services that run jobs inline."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from app.config import Settings
from app.services import Services, build_services
from tests.image import portraits


def png_bytes(image: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def portrait() -> portraits.Composite:
    return portraits.single_portrait()


@pytest.fixture(scope="session")
def group() -> Image.Image:
    return portraits.group_photo()


@pytest.fixture
def inline_services(settings: Settings) -> Iterator[Services]:
    """Services whose queue runs each job as it is submitted (huey immediate mode)."""
    svc = build_services(settings, immediate=True)
    yield svc
    svc.close()


@pytest.fixture
def inline_client(inline_services: Services) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(inline_services, with_ui=False),
                    raise_server_exceptions=False) as c:
        yield c
