"""The REST shell: envelope, headers, error mapping, metrics, JSON logs, languages."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from app.logs import JsonFormatter
from app.main import create_app
from models.errors import InvalidInput


def test_headers_on_every_response(client) -> None:
    for path in ("/health", "/api/nope", "/metrics"):
        response = client.get(path)
        for header in ("x-request-id", "x-response-time", "x-service-name",
                       "x-service-version"):
            assert header in response.headers, (path, header)
        assert response.headers["x-service-name"] == "video-message-studio"
        assert response.headers["x-response-time"].endswith("ms")


def test_request_id_echoed_or_minted(client) -> None:
    assert client.get("/health", headers={"X-Request-ID": "abc"}).headers["x-request-id"] == "abc"
    minted = client.get("/health").headers["x-request-id"]
    assert len(minted) == 32
    hostile = client.get("/health", headers={"X-Request-ID": "a\tb<script>"})
    assert hostile.headers["x-request-id"] != "a\tb<script>"


def test_health_envelope(client) -> None:
    body = client.get("/health").json()
    assert body["success"] is True
    data = body["data"]
    assert data["version"] == "0.1.0"
    assert data["storage"]["ok"] and data["queue"]["ok"]
    for rows in data["engines"].values():
        for row in rows:
            assert {"name", "available", "reason"} <= set(row) <= {
                "name", "available", "reason", "circuit"}
            assert row["available"] or row["reason"]
    assert set(body["metadata"]) >= {"timestamp", "service", "version", "request_id"}


def test_unknown_route_404_in_envelope(client) -> None:
    for method in ("get", "post", "delete"):
        response = getattr(client, method)("/api/does/not/exist")
        assert response.status_code == 404
        body = response.json()
        assert body["success"] is False
        assert body["error"]["code"] == "NOT_FOUND"
        assert body["metadata"]["request_id"] == response.headers["x-request-id"]


def test_bad_json_is_400_with_field_details(client) -> None:
    response = client.post("/api/jobs/diagnostics", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["fields"][0]["type"] == "json_invalid"


def test_wrong_type_is_400_naming_the_field(client) -> None:
    response = client.post("/api/jobs/diagnostics", json={"seconds": "lots"})
    assert response.status_code == 400
    assert response.json()["error"]["details"]["fields"][0]["field"] == "seconds"


@pytest.fixture
def crashing_client(services):
    app = create_app(services, with_ui=False)
    router = APIRouter()

    @router.get("/api/test/crash")
    def crash() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    @router.get("/api/test/invalid")
    def invalid() -> None:
        raise InvalidInput("Bad thing.", code="VOICE_TEXT_EMPTY", message_ja="だめです。")

    app.router.routes.insert(0, router.routes[0])
    app.router.routes.insert(0, router.routes[1])
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_unhandled_error_is_500_without_traceback(crashing_client) -> None:
    response = crashing_client.get("/api/test/crash", headers={"X-Request-ID": "r-500"})
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "INTERNAL_ERROR"
    assert body["metadata"]["request_id"] == "r-500"
    assert "Traceback" not in response.text and "secret internals" not in response.text


def test_error_language_follows_accept_language(crashing_client) -> None:
    en = crashing_client.get("/api/test/invalid", headers={"Accept-Language": "en-US,en"})
    ja = crashing_client.get("/api/test/invalid", headers={"Accept-Language": "ja,en;q=0.5"})
    assert en.status_code == ja.status_code == 400
    assert en.json()["error"]["message"] == "Bad thing."
    assert ja.json()["error"]["message"] == "だめです。"
    assert ja.json()["error"]["code"] == "VOICE_TEXT_EMPTY"


def test_metrics_prometheus_text(client) -> None:
    client.get("/health")
    client.get("/api/nope")
    client.post("/api/jobs/diagnostics", json={})
    text = client.get("/metrics").text
    assert 'studio_http_requests_total{method="GET",route="/health",status="200"}' in text
    assert 'route="/api/{rest:path}",status="404"' in text
    assert "studio_http_request_duration_seconds_bucket" in text
    assert 'studio_jobs{status="queued"} 1.0' in text
    assert "studio_queue_depth 1.0" in text
    assert 'studio_engine_available{capability="tts"' in text


def test_log_lines_are_json_with_request_id(client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="studio.access"):
        client.get("/health", headers={"X-Request-ID": "log-me"})
    records = [r for r in caplog.records if r.name == "studio.access"]
    assert records
    line = json.loads(JsonFormatter().format(records[-1]))
    assert line["request_id"] == "log-me"
    assert line["service"] == "video-message-studio"
    assert line["event"].startswith("GET /health 200")
    assert isinstance(line["duration_ms"], float)
    assert set(line) >= {"timestamp", "level", "version", "metadata"}


def test_openapi_lists_shell_routes(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/api/jobs/{job_id}", "/api/jobs/{job_id}/cancel"} <= set(paths)
