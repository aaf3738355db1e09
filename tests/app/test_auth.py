"""Authentication and ownership: forged, expired and wrong-algorithm tokens; service tokens;
cross-user access; signed file links; the metrics token; the UI login."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient

from app.auth import (
    check_password,
    hash_password,
    issue_service_token,
    issue_token,
    load_users,
    verify_service_token,
)
from app.config import SettingsError, load_settings
from app.main import create_app
from app.services import build_services
from tests.conftest import LiveServer

SECRET = "s" * 40
SERVICE = "w" * 40


@pytest.fixture
def secured(settings):
    services = build_services(settings.model_copy(update={
        "jwt_secret": SECRET, "service_secret": SERVICE, "metrics_token": "m-token"}))
    with TestClient(create_app(services, with_ui=False)) as client:
        yield client, services
    services.close()


def bearer(user: str, roles: list[str] | None = None, **kw) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, user, roles=roles, **kw)}"}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_api_needs_a_token_but_health_does_not(secured) -> None:
    client, _ = secured
    assert client.get("/health").status_code == 200
    response = client.get("/api/jobs")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "AUTH_REQUIRED"
    assert client.get("/api/jobs", headers=bearer("alice")).status_code == 200


def test_expired_token_refused(secured) -> None:
    client, _ = secured
    old = issue_token(SECRET, "alice", ttl=10, now=int(time.time()) - 100)
    response = client.get("/api/jobs", headers={"Authorization": f"Bearer {old}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AUTH_TOKEN_EXPIRED"


def test_forged_and_wrong_algorithm_tokens_refused(secured) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    client, _ = secured
    now = int(time.time())
    claims = {"user_id": "mallory", "roles": ["admin"], "iat": now, "exp": now + 600}
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    good = issue_token(SECRET, "alice")
    header, payload, signature = good.split(".")
    forged_tokens = {
        "wrong secret": jwt.encode(claims, "x" * 40, algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "RS256": jwt.encode(claims, key, algorithm="RS256"),
        "HS256 keyed with the RSA public key": _hs256_with(public_pem, claims),
        "tampered payload": f"{header}.{_b64(claims)}.{signature}",
        "garbage": "not.a.token",
        "missing exp": jwt.encode({"user_id": "x", "iat": now}, SECRET, algorithm="HS256"),
    }
    for name, token in forged_tokens.items():
        response = client.get("/api/jobs", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "AUTH_TOKEN_INVALID", name


def _hs256_with(secret: bytes, claims: dict) -> str:
    import hashlib
    import hmac

    signing = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}"
    mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def test_users_see_only_their_own_jobs(secured) -> None:
    client, _ = secured
    job_id = client.post("/api/jobs/diagnostics", json={},
                         headers=bearer("alice")).json()["data"]["task_id"]
    assert client.get(f"/api/jobs/{job_id}", headers=bearer("alice")).status_code == 200
    stranger = client.get(f"/api/jobs/{job_id}", headers=bearer("bob"))
    assert stranger.status_code == 404
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=bearer("bob")).status_code == 404
    assert client.get("/api/jobs", headers=bearer("bob")).json()["data"]["jobs"] == []
    assert len(client.get("/api/jobs", headers=bearer("alice")).json()["data"]["jobs"]) == 1
    admin = client.get(f"/api/jobs/{job_id}", headers=bearer("root", roles=["admin"]))
    assert admin.status_code == 200


def test_service_token(secured) -> None:
    client, _ = secured
    token = issue_service_token(SERVICE, "worker-1")
    assert client.get("/api/jobs", headers={"X-Service-Token": token}).status_code == 200
    stale = issue_service_token(SERVICE, "worker-1", now=time.time() - 301)
    response = client.get("/api/jobs", headers={"X-Service-Token": stale})
    assert response.json()["error"]["code"] == "AUTH_SERVICE_TOKEN_EXPIRED"
    service, stamp, mac = token.split(":")
    tampered = f"{service}:{stamp}:{'0' * len(mac)}"
    assert client.get("/api/jobs", headers={"X-Service-Token": tampered}).status_code == 401
    assert verify_service_token(SERVICE, token).kind == "service"


def test_files_need_a_signed_link(secured) -> None:
    client, services = secured
    services.storage.put("videos/final/v.mp4", b"movie")
    link = services.storage.url("videos/final/v.mp4")
    assert "sig=" in link
    assert "exp=" in link
    assert client.get(link).content == b"movie"
    assert client.get("/files/videos/final/v.mp4").status_code == 401
    assert client.get("/files/videos/final/v.mp4", headers=bearer("bob")).status_code == 401
    assert client.get(link.replace("sig=", "sig=0")).status_code == 401
    other = link.replace("videos/final/v.mp4", "videos/final/w.mp4")
    assert client.get(other).status_code == 401
    admin = client.get("/files/videos/final/v.mp4", headers=bearer("root", roles=["admin"]))
    assert admin.status_code == 200


def test_metrics_token(secured) -> None:
    client, _ = secured
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer m-token"})
    assert ok.status_code == 200
    assert "studio_http_requests_total" in ok.text


def test_passwords_are_hashed_and_checked() -> None:
    stored = hash_password("correct horse", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$")
    assert check_password("correct horse", stored)
    assert not check_password("wrong", stored)
    assert not check_password("x", "garbage")
    with pytest.raises(ValueError, match="pbkdf2_sha256"):
        load_users("alice:plaintext", None)


def test_short_jwt_secret_refused(settings, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_JWT_SECRET", "short")
    with pytest.raises(SettingsError, match="STUDIO_JWT_SECRET"):
        load_settings()


@pytest.mark.slow
def test_ui_login(settings) -> None:
    users = f"alice:{hash_password('wonderland', iterations=1000)}"
    services = build_services(settings.model_copy(update={"auth_users": users}))
    try:
        with LiveServer(services, with_ui=True) as server, httpx.Client(
                base_url=server.url) as http:
            assert http.get("/config").status_code == 401
            bad = http.post("/login", data={"username": "alice", "password": "nope"})
            assert bad.status_code == 400
            good = http.post("/login", data={"username": "alice", "password": "wonderland"})
            assert good.status_code == 200
            assert http.get("/config").status_code == 200
    finally:
        services.close()
