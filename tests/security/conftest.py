"""Security test fixtures: the app with REST authentication on, tokens for two users and an
admin, and small valid media to build hostile variants from."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.auth import issue_token
from app.main import create_app
from app.services import Services, build_services

SECRET = "k" * 40


def bearer(user: str, *, admin: bool = False) -> dict[str, str]:
    roles = ["user", "admin"] if admin else ["user"]
    return {"Authorization": f"Bearer {issue_token(SECRET, user, roles=roles)}"}


ALICE, BOB, ADMIN = bearer("alice"), bearer("bob"), bearer("root", admin=True)


@pytest.fixture
def secured(settings) -> Iterator[tuple[TestClient, Services]]:
    """REST auth on; rate limits off (floods are tested elsewhere)."""
    services = build_services(settings.model_copy(update={
        "jwt_secret": SECRET, "rate_limit_per_minute": 0, "tts_backends": ["openjtalk"]}))
    with TestClient(create_app(services, with_ui=False),
                    raise_server_exceptions=False) as client:
        yield client, services
    services.close()


def wav(seconds: float = 1.0, rate: int = 16000, freq: float = 220.0) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t)))
    buffer = io.BytesIO()
    sf.write(buffer, samples.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def png(size: tuple[int, int] = (64, 64)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 170, 150)).save(buffer, format="PNG")
    return buffer.getvalue()
