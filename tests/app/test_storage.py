"""Storage: key validation, atomic local writes, and S3 against a real S3-protocol server."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from app.storage import LocalStorage, S3Storage, new_key, validate_key
from models.errors import InvalidInput, NotFound
from tests.conftest import free_port

BAD_KEYS = ["", "../etc/passwd", "/abs/key", "a/../../b", "a//b", "a/./b", "nul\x00byte",
            "back\\slash", "c:/windows", "sp ace/x.png", "x" * 600]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_refused(key: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        validate_key(key)
    store = LocalStorage(tmp_path / "files")
    with pytest.raises(InvalidInput):
        store.put(key, b"x")


def test_new_key_follows_layout() -> None:
    key = new_key("videos/final", "mp4")
    assert key.startswith("videos/final/") and key.endswith(".mp4")
    assert len(key.split("/")[-1]) == 32 + 4


def test_local_roundtrip_and_listing(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "files")
    store.put("inputs/images/a.png", b"one")
    store.put("inputs/images/b.png", b"two")
    store.put("videos/final/c.mp4", b"three")
    assert store.get("inputs/images/a.png") == b"one"
    assert store.exists("videos/final/c.mp4")
    assert [o.key for o in store.list("inputs")] == ["inputs/images/a.png", "inputs/images/b.png"]
    assert store.url("videos/final/c.mp4") == "/files/videos/final/c.mp4"
    assert store.delete("inputs/images/a.png") is True
    assert store.delete("inputs/images/a.png") is False
    with pytest.raises(NotFound):
        store.get("inputs/images/a.png")


def test_local_write_is_atomic(tmp_path: Path) -> None:
    """Readers never see a half-written file: each read is one complete version."""
    store = LocalStorage(tmp_path / "files")
    versions = [bytes([i]) * 200_000 for i in range(1, 6)]
    store.put("temp/x.bin", versions[0])
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            data = store.get("temp/x.bin")
            seen.add(data[:1] + data[-1:] + bytes([len(data) == 200_000]))

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(20):
        for version in versions:
            store.put("temp/x.bin", version)
    stop.set()
    thread.join()
    assert seen
    assert all(s[0] == s[1] and s[2] == 1 for s in seen)  # whole, and one version
    assert not [p for p in (tmp_path / "files" / "temp").iterdir() if p.name.startswith(".tmp")]


def test_files_route_serves_and_refuses(client, services) -> None:
    services.storage.put("processed/final/x.png", b"\x89PNG fake")
    ok = client.get("/files/processed/final/x.png")
    assert ok.status_code == 200
    assert ok.content == b"\x89PNG fake"
    assert ok.headers["content-type"] == "image/png"
    for bad in ("/files/processed/final/", "/files/../../etc/passwd", "/files/processed",
                "/files/%2e%2e/%2e%2e/etc/passwd", "/files/nope.png"):
        response = client.get(bad)
        assert response.status_code in (400, 404), bad
        assert response.json()["success"] is False


@pytest.fixture
def s3_store(moto_s3: str, aws_credentials: None, tmp_path: Path) -> S3Storage:
    import boto3

    bucket = f"studio-{free_port()}"
    boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1").create_bucket(
        Bucket=bucket)
    return S3Storage(bucket, endpoint_url=moto_s3, prefix="tenant", cache_dir=tmp_path / "c")


def test_s3_roundtrip_over_http(s3_store: S3Storage) -> None:
    s3_store.put("inputs/audio/a.wav", b"RIFFdata")
    assert s3_store.exists("inputs/audio/a.wav")
    assert not s3_store.exists("inputs/audio/b.wav")
    assert s3_store.get("inputs/audio/a.wav") == b"RIFFdata"
    assert [o.key for o in s3_store.list("inputs/")] == ["inputs/audio/a.wav"]
    assert s3_store.health()[0] is True
    local = s3_store.local_path("inputs/audio/a.wav")
    assert local.read_bytes() == b"RIFFdata"
    assert s3_store.delete("inputs/audio/a.wav") is True
    with pytest.raises(NotFound):
        s3_store.get("inputs/audio/a.wav")


def test_s3_presigned_url_downloads(s3_store: S3Storage) -> None:
    s3_store.put("videos/final/v.mp4", b"movie-bytes")
    url = s3_store.url("videos/final/v.mp4")
    assert "X-Amz-Expires=3600" in url or "Expires=" in url
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"movie-bytes"


def test_s3_refuses_bad_keys(s3_store: S3Storage) -> None:
    with pytest.raises(InvalidInput):
        s3_store.put("../escape", b"x")


def test_s3_unreachable_reports_unhealthy(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    store = S3Storage("nobucket", endpoint_url=f"http://127.0.0.1:{free_port()}",
                      cache_dir=tmp_path)
    ok, why = store.health()
    assert ok is False and "nobucket" in why
