"""Body size caps and per-client rate limits."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api.limits import RateLimiter
from app.main import create_app
from app.services import build_services
from tests.conftest import LiveServer


@pytest.fixture
def limited(settings):
    services = build_services(settings.model_copy(update={
        "rate_limit_per_minute": 3, "max_body_mb": 1 / 1024}))  # 1 KiB
    yield services
    services.close()


def test_rate_limiter_window() -> None:
    limiter = RateLimiter(2, window=60)
    assert limiter.check("a", now=0) is None
    assert limiter.check("a", now=1) is None
    assert limiter.check("a", now=2) == pytest.approx(58)
    assert limiter.check("b", now=2) is None  # per client
    assert limiter.check("a", now=61) is None
    assert RateLimiter(0).check("a") is None  # 0 = off


def test_expensive_route_flood_gets_429_with_retry_after(limited) -> None:
    with LiveServer(limited) as server, httpx.Client(base_url=server.url) as http:
        statuses = [http.post("/api/bgm/mix", json={}).status_code for _ in range(10)]
        assert statuses[:3].count(429) == 0
        assert statuses[3:] == [429] * 7
        blocked = http.post("/api/bgm/mix", json={})
        assert int(blocked.headers["retry-after"]) >= 1
        body = blocked.json()
        assert body["error"]["code"] == "RATE_LIMITED"
        assert body["error"]["retry_after"] >= 1
        # cheap routes are not limited, and the server keeps serving
        assert all(http.get("/health").status_code == 200 for _ in range(5))


def test_declared_body_over_cap_is_413(limited) -> None:
    with TestClient(create_app(limited, with_ui=False)) as client:
        response = client.post("/api/jobs/diagnostics", content=b"x" * 4096,
                               headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "VALIDATION_TOO_LARGE"


def test_streamed_body_over_cap_is_413_before_reading_it_all(limited) -> None:
    sent = []

    def chunks():
        for _ in range(1000):  # would be 1 MB; the cap is 1 KiB
            sent.append(1)
            yield b"y" * 1024

    with LiveServer(limited) as server:
        response = httpx.post(server.url + "/api/jobs/diagnostics", content=chunks(),
                              headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "VALIDATION_TOO_LARGE"
        assert httpx.get(server.url + "/health").status_code == 200
