"""Retention: old artifacts go, files of running jobs stay; the free-disk guard."""

from __future__ import annotations

import os
import time

import pytest

from app.retention import cleanup, retention_rules
from app.services import build_services
from tests.conftest import unavailable


def _age(services, key: str, seconds: float) -> None:
    path = services.storage.local_path(key)
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_cleanup_by_prefix_age_and_in_use(services) -> None:
    storage = services.storage
    day = 86400
    files = {
        "temp/old.wav": 2 * 3600, "temp/new.wav": 60,
        "inputs/images/old.png": 8 * day, "inputs/images/recent.png": 6 * day,
        "processed/final/old.png": 4 * day, "videos/final/old.mp4": 31 * day,
        "videos/final/keep.mp4": 29 * day, "voices/openvoice/openvoice_1/profile.json": 400 * day,
        "inputs/images/in-use.png": 30 * day,
        "voices/kokoro/old.wav": 4 * day,
        "voices/openvoice/openvoice_1/reference.wav": 400 * day,
    }
    for key, age in files.items():
        storage.put(key, b"x")
        _age(services, key, age)
    services.jobs.create("diagnostics.tone", {"image_key": "inputs/images/in-use.png"})
    report = cleanup(storage, services.jobs, retention_rules(services.settings))
    left = {o.key for o in storage.list()}
    assert left == {"temp/new.wav", "inputs/images/recent.png", "videos/final/keep.mp4",
                    "voices/openvoice/openvoice_1/profile.json", "inputs/images/in-use.png",
                    "voices/openvoice/openvoice_1/reference.wav"}
    assert report == {"deleted": 5, "kept_in_use": 1}


def test_retention_is_a_periodic_task(services) -> None:
    names = {task.name for task in services.queue.huey._registry.periodic_tasks}
    assert "studio.retention" in names


def test_new_jobs_refused_when_disk_nearly_full(settings) -> None:
    svc = build_services(settings.model_copy(update={"min_free_mb": 1e12}))
    try:
        from fastapi.testclient import TestClient

        from app.main import create_app

        with TestClient(create_app(svc, with_ui=False)) as client:
            response = client.post("/api/jobs/diagnostics", json={})
            assert response.status_code == 507
            error = response.json()["error"]
            assert error["code"] == "STORAGE_DISK_FULL"
            assert error["details"]["min_free_mb"] == 1e12
            assert client.get("/health").status_code == 200
    finally:
        svc.close()


def test_small_data_dir_quota(settings, tmp_path) -> None:
    """A real small disk (a 2 MB tmpfs): needs root to mount it (CI runs as root; a skip
    elsewhere, a failure where services are required)."""
    import subprocess

    if os.geteuid() != 0:
        unavailable("needs root to mount a small tmpfs")
    quota = tmp_path / "small"
    quota.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(quota)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        unavailable(f"tmpfs mount not permitted here: {mount.stderr.strip()}")
    try:
        svc = build_services(settings.model_copy(update={"data_dir": quota / "data",
                                                         "min_free_mb": 5}))
        from models.errors import StudioError

        with pytest.raises(StudioError) as info:
            svc.queue.submit("diagnostics.tone", {})
        assert info.value.code == "STORAGE_DISK_FULL"
        svc.close()
    finally:
        subprocess.run(["umount", str(quota)], check=False)
