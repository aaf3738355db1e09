"""Backups round-trip: a populated studio is backed up with the real command, restored into
an empty data dir, every checksum matches, and a studio started on the restored dir serves
the same files and job records. Damaged backups and non-empty targets are refused."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from app import backup
from app.config import Settings
from app.services import Services, build_services
from tests.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[2]


def studio_settings(base: Settings, data_dir: Path, **extra: object) -> Settings:
    # queue_url None: the default SQLite queue and job store inside the data dir
    return base.model_copy(update={"data_dir": data_dir, "queue_url": None, "workers": 0,
                                   **extra})


def populate(services: Services) -> dict[str, str]:
    """A profile, inputs, an output video, a music bed, a temp file; three jobs."""
    rng = np.random.default_rng(7)
    blobs = {
        "voices/openvoice/p1/profile.json": json.dumps(
            {"id": "p1", "name": "おばあちゃん", "engine": "voice_matching"}).encode(),
        "voices/openvoice/p1/reference.wav": b"RIFF" + rng.bytes(40_000),
        "inputs/images/in1.png": b"\x89PNG" + rng.bytes(20_000),
        "videos/final/v1.mp4": rng.bytes(300_000),
        "bgm/b1.mp3": rng.bytes(50_000),
        "temp/scratch.wav": rng.bytes(1000),
    }
    for key, data in blobs.items():
        services.storage.put(key, data)
    jobs = services.jobs
    done = jobs.create("message.generate", {"text": "こんにちは"}, ["render"], owner="u1")
    jobs.update(done.id, status="completed", progress=100.0,
                result={"video_key": "videos/final/v1.mp4", "backend": "builtin"})
    failed = jobs.create("message.generate", {"text": "x"}, ["render"])
    jobs.update(failed.id, status="failed", error={"code": "VIDEO_FAILED", "message": "no"})
    queued = jobs.create("message.generate", {"text": "later"}, ["render"])
    return {"done": done.id, "failed": failed.id, "queued": queued.id}


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env.update({"STUDIO_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, "-m", "app.backup", *args], cwd=data_dir.parent,
                          env=env, capture_output=True, text=True, timeout=120)


def checksums(services: Services) -> dict[str, str]:
    return {o.key: hashlib.sha256(services.storage.get(o.key)).hexdigest()
            for o in services.storage.list()}


@pytest.fixture
def source(settings: Settings, tmp_path: Path) -> Iterator[tuple[Services, dict[str, str]]]:
    services = build_services(studio_settings(settings, tmp_path / "old"))
    ids = populate(services)
    yield services, ids
    services.close()


@pytest.mark.slow
def test_round_trip_into_an_empty_data_dir(source, settings, tmp_path: Path) -> None:
    old, ids = source
    dest = tmp_path / "backup-1"
    made = run_cli(tmp_path / "old", "create", str(dest))
    assert made.returncode == 0, made.stderr
    assert "5 files" in made.stdout and "3 job records" in made.stdout
    manifest = json.loads((dest / "manifest.json").read_text())
    assert {f["key"] for f in manifest["files"]} == set(checksums(old)) - {"temp/scratch.wav"}
    assert run_cli(tmp_path / "old", "verify", str(dest)).returncode == 0

    restored = run_cli(tmp_path / "new", "restore", str(dest))
    assert restored.returncode == 0, restored.stderr

    new = build_services(studio_settings(settings, tmp_path / "new"))
    try:
        expected = {k: v for k, v in checksums(old).items() if not k.startswith("temp/")}
        assert checksums(new) == expected
        assert {f["key"]: f["sha256"] for f in manifest["files"]} == expected
        for key in ("done", "failed"):
            assert new.jobs.get(ids[key]).to_dict() == old.jobs.get(ids[key]).to_dict()
        lost = new.jobs.get(ids["queued"])
        assert lost.status == "failed" and lost.error["code"] == backup.LOST_CODE
        with LiveServer(new) as server:
            video = httpx.get(f"{server.url}/files/videos/final/v1.mp4")
            assert video.status_code == 200
            assert video.content == old.storage.get("videos/final/v1.mp4")
            profile = httpx.get(f"{server.url}/files/voices/openvoice/p1/profile.json")
            assert profile.json()["name"] == "おばあちゃん"
            job = httpx.get(f"{server.url}/api/jobs/{ids['done']}").json()["data"]
            assert job["status"] == "completed"
            assert job["video_url"] == "/files/videos/final/v1.mp4"
            listed = httpx.get(f"{server.url}/api/jobs").json()["data"]
            assert {j["job_id"] for j in listed["jobs"]} == set(ids.values())
    finally:
        new.close()


def test_damaged_backup_is_refused_before_anything_is_written(source, settings,
                                                              tmp_path: Path) -> None:
    old, _ = source
    dest = tmp_path / "b"
    backup.create(old.settings, str(dest))
    victim = dest / "files" / "videos" / "final" / "v1.mp4"
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    target = build_services(studio_settings(settings, tmp_path / "fresh"))
    try:
        with pytest.raises(backup.BackupError) as err:
            backup.restore(target.settings, str(dest), storage=target.storage,
                           jobs=target.jobs.store)
        assert err.value.code == "BACKUP_CORRUPT"
        assert "videos/final/v1.mp4" in err.value.message
        assert list(target.storage.list()) == [] and list(target.jobs.store.all()) == []
    finally:
        target.close()
    result = run_cli(tmp_path / "fresh", "verify", str(dest))
    assert result.returncode == 1 and "BACKUP_CORRUPT" in result.stderr


def test_cut_short_backup_and_busy_targets_are_refused(source, tmp_path: Path) -> None:
    old, _ = source
    dest = tmp_path / "b"
    backup.create(old.settings, str(dest))
    with pytest.raises(backup.Conflict):  # the source studio is not empty
        backup.restore(old.settings, str(dest))
    with pytest.raises(backup.Conflict):  # a backup never overwrites another
        backup.create(old.settings, str(dest))
    (dest / "manifest.json").unlink()
    result = run_cli(tmp_path / "other", "restore", str(dest))
    assert result.returncode == 1 and "BACKUP_NOT_FOUND" in result.stderr
    assert run_cli(tmp_path / "other", "restore", str(tmp_path / "nowhere")).returncode == 1


@pytest.mark.slow
def test_round_trip_through_an_s3_prefix(source, settings, tmp_path: Path, moto_s3: str,
                                         aws_credentials: None) -> None:
    """Backups to s3://bucket/prefix, and an S3-stored studio restored from it."""
    import uuid

    import boto3

    endpoint = moto_s3
    backups, studio = f"backups-{uuid.uuid4().hex[:8]}", f"studio-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for bucket in (backups, studio):
        client.create_bucket(Bucket=bucket)
    old, ids = source
    s3_settings = old.settings.model_copy(update={"s3_endpoint_url": endpoint})
    summary = backup.create(s3_settings, f"s3://{backups}/nightly/1")
    assert summary.files == 5 and summary.jobs == 3
    target = build_services(studio_settings(
        settings, tmp_path / "s3-studio", storage="s3", s3_bucket=studio,
        s3_prefix="tenant", s3_endpoint_url=endpoint))
    try:
        backup.restore(target.settings, f"s3://{backups}/nightly/1")
        expected = {k: v for k, v in checksums(old).items() if not k.startswith("temp/")}
        assert checksums(target) == expected
        keys = {o["Key"] for o in client.list_objects_v2(Bucket=studio)["Contents"]}
        assert "tenant/videos/final/v1.mp4" in keys
        assert target.jobs.get(ids["done"]).result["video_key"] == "videos/final/v1.mp4"
    finally:
        target.close()
