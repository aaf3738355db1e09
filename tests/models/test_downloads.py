"""The model manager against a local Hub stand-in (``HF_ENDPOINT``): verified, resumable
downloads; background downloads that never hold up a job; failures remembered with backoff."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from models.base import EngineSettings
from models.catalog import CATALOG
from models.chain import FallbackChain
from models.downloads import RECORD, DownloadError, ModelManager
from tests.conftest import free_port
from tests.stubs.hub import HubBehaviour, HubStub

WEIGHTS = os.urandom(300_000)
CONFIG = b'{"model_type": "sam2"}'


def _sam2_repo(hub: HubStub) -> None:
    hub.add_repo(CATALOG["sam2"].repo_id, {"config.json": CONFIG, "model.safetensors": WEIGHTS})


def _settings(root: Path, timeout: float = 5.0) -> EngineSettings:
    return EngineSettings(models_dir=root, allow_downloads=True, request_timeout=timeout)


def _wait(state, timeout: float = 30.0) -> None:
    assert state.finished.wait(timeout), "the background download did not end"


def test_download_verifies_and_records_sha256(tmp_path: Path, monkeypatch) -> None:
    with HubStub() as hub:
        _sam2_repo(hub)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        manager = ModelManager(_settings(tmp_path))
        seen: list[tuple[int, int]] = []
        manager.download("sam2", progress=lambda done, total: seen.append((done, total)))
    folder = tmp_path / "sam2"
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert (folder / "config.json").read_bytes() == CONFIG
    assert not list(folder.glob("*.part"))
    assert seen[-1] == (len(WEIGHTS) + len(CONFIG), len(WEIGHTS) + len(CONFIG))
    rows = {r["file"]: r for r in manager.verify("sam2")}
    assert rows["model.safetensors"]["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert all(r["ok"] for r in rows.values())
    assert (folder / RECORD).is_file()
    # a file changed after download is reported, not silently trusted
    (folder / "model.safetensors").write_bytes(b"x" + WEIGHTS[1:])
    changed = {r["file"]: r for r in manager.verify("sam2")}["model.safetensors"]
    assert changed["ok"] is False
    assert "CHANGED" in changed["note"]


def test_dropped_connection_resumes_from_the_part_file(tmp_path: Path, monkeypatch) -> None:
    key = f"{CATALOG['sam2'].repo_id}/model.safetensors"
    with HubStub(HubBehaviour(drop_after={key: 100_000})) as hub:
        _sam2_repo(hub)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        manager = ModelManager(_settings(tmp_path))
        with pytest.raises(DownloadError, match="incomplete"):
            manager.download("sam2")
        part = tmp_path / "sam2" / "model.safetensors.part"
        assert part.stat().st_size == 100_000
        assert not (tmp_path / "sam2" / "model.safetensors").exists()  # never half-installed
        manager.download("sam2")
        ranges = [r for m, p, r in hub.behaviour.requests if m == "GET" and p.startswith("/cdn/")]
    assert ranges[-1] == "bytes=100000-"
    assert (tmp_path / "sam2" / "model.safetensors").read_bytes() == WEIGHTS


def test_corrupted_file_is_thrown_away(tmp_path: Path, monkeypatch) -> None:
    key = f"{CATALOG['sam2'].repo_id}/model.safetensors"
    with HubStub(HubBehaviour(corrupt={key})) as hub:
        _sam2_repo(hub)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(DownloadError, match="corrupted"):
            ModelManager(_settings(tmp_path)).download("sam2")
    folder = tmp_path / "sam2"
    assert not (folder / "model.safetensors").exists()
    assert not (folder / "model.safetensors.part").exists()


def test_refused_connection_is_remembered_with_backoff(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    manager = ModelManager(_settings(tmp_path))
    ok, why = manager.availability("sam2")
    assert not ok
    assert why.startswith("downloading")
    _wait(manager.state("sam2"))
    ok, why = manager.availability("sam2")
    assert not ok
    assert why.startswith("download failed: ")
    assert "cannot connect" in why
    assert why.endswith("next try in 1 min")
    # no new attempt inside the backoff: the state does not go back to downloading
    assert manager.start("sam2").status == "failed"
    assert manager.state("sam2").failures == 1
    # after the backoff one more try, and the next wait doubles
    manager.state("sam2").retry_at = time.monotonic() - 1
    assert manager.availability("sam2")[1].startswith("downloading")
    _wait(manager.state("sam2"))
    assert manager.state("sam2").failures == 2
    assert manager.availability("sam2")[1].endswith("next try in 2 min")


def test_hanging_hub_times_out_in_the_background(tmp_path: Path, monkeypatch) -> None:
    # The caller never waits for the hub: with a hub that answers nothing until released and
    # a timeout far longer than any test, availability() has answered while the download is
    # still open (judged by state, not by a wall clock on a loaded machine).
    with HubStub(HubBehaviour(hang=True)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        manager = ModelManager(_settings(tmp_path / "held", timeout=600))
        ok, why = manager.availability("wav2lip")
        assert not ok
        assert why.startswith("downloading")
        assert not manager.state("wav2lip").finished.is_set()  # still waiting on the hub
        hub.release.set()  # the hub hangs up without an answer: the download fails
        _wait(manager.state("wav2lip"))
        assert manager.availability("wav2lip")[1].startswith("download failed: ")
    # and a hub that never answers is given up on after the timeout, in the background
    with HubStub(HubBehaviour(hang=True)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        manager = ModelManager(_settings(tmp_path / "timeout", timeout=0.5))
        assert manager.availability("wav2lip")[1].startswith("downloading")
        _wait(manager.state("wav2lip"))
        assert "timed out" in manager.availability("wav2lip")[1]


def test_truncated_file_fails_and_is_not_installed(tmp_path: Path, monkeypatch) -> None:
    key = f"{CATALOG['sam2'].repo_id}/model.safetensors"
    with HubStub(HubBehaviour(drop_after={key: 1000})) as hub:
        _sam2_repo(hub)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        manager = ModelManager(_settings(tmp_path))
        manager.availability("sam2")
        _wait(manager.state("sam2"))
        ok, why = manager.availability("sam2")
    assert not ok
    assert "got 1000 of 300000 bytes" in why
    assert not (tmp_path / "sam2" / "model.safetensors").exists()


def test_missing_engine_in_a_job_goes_straight_to_the_next(tmp_path: Path, monkeypatch) -> None:
    """The job's fallback record says why; the job does not wait for the hub."""
    from models.refine.closed_form import ClosedFormRefiner
    from models.refine.sam2 import Sam2Refiner

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    chain = FallbackChain("refiner", [Sam2Refiner(_settings(tmp_path)), ClosedFormRefiner()])
    result = chain.run(lambda e: e.name)
    assert result.backend == "closed_form"
    assert result.attempts[0].outcome == "skipped"
    assert result.attempts[0].reason.startswith("downloading")
    from models.downloads import manager_for  # one manager for every engine of a settings

    _wait(manager_for(_settings(tmp_path)).state("sam2"))
    again = chain.run(lambda e: e.name)
    assert again.attempts[0].reason.startswith("download failed: ")
    inventory = chain.inventory()
    assert inventory[0]["reason"].startswith("download failed: ")


def test_without_downloads_the_reason_says_how_to_get_them(tmp_path: Path) -> None:
    manager = ModelManager(EngineSettings(models_dir=tmp_path))
    ok, why = manager.availability("wav2lip")
    assert not ok
    assert "python -m app.models download wav2lip" in why
    assert manager.state("wav2lip").status == "idle"


@pytest.mark.slow  # six runs of the CLI, each a fresh interpreter (~5 s)
def test_cli_download_list_verify(tmp_path: Path) -> None:
    import subprocess
    import sys

    with HubStub() as hub:
        _sam2_repo(hub)
        env = {**os.environ, "HF_ENDPOINT": hub.url, "STUDIO_DATA_DIR": str(tmp_path),
               "STUDIO_MODELS_DIR": str(tmp_path / "m")}

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "app.models", *args], env=env,
                                  capture_output=True, text=True, timeout=120, check=False)

        before = run("verify", "sam2")
        assert before.returncode == 1
        assert "sam2/model.safetensors: missing" in before.stdout
        done = run("download", "sam2")
        assert done.returncode == 0, done.stderr
        assert "sam2: ready in" in done.stdout
    listed = run("list", "sam2")
    assert listed.returncode == 0
    assert "ready" in listed.stdout
    assert hashlib.sha256(WEIGHTS).hexdigest() in listed.stdout
    assert "Apache-2.0" in listed.stdout
    assert "NOT FOR COMMERCIAL USE" in run("list", "wav2lip").stdout
    checked = run("verify", "sam2")
    assert checked.returncode == 0
    assert "matches the downloaded file" in checked.stdout
    assert run("download", "nonsense").returncode != 0


def test_repository_with_only_the_older_format_serves_that(tmp_path: Path, monkeypatch) -> None:
    """A repository without ``model.safetensors`` but with ``pytorch_model.bin`` still works."""
    with HubStub() as hub:
        hub.add_repo(CATALOG["segformer"].repo_id,
                     {"config.json": CONFIG, "pytorch_model.bin": WEIGHTS})
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        manager = ModelManager(_settings(tmp_path))
        manager.download("segformer")
    assert (tmp_path / "segformer" / "pytorch_model.bin").read_bytes() == WEIGHTS
    assert manager.availability("segformer")[0]
    rows = {r["file"]: r for r in manager.verify("segformer")}
    assert rows["pytorch_model.bin"]["ok"]
    assert rows["pytorch_model.bin"]["note"] == "matches the downloaded file"


def test_missing_file_on_the_hub_is_a_clear_failure(tmp_path: Path, monkeypatch) -> None:
    with HubStub() as hub:
        hub.add_repo(CATALOG["sam2"].repo_id, {"config.json": CONFIG})
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(DownloadError, match="HTTP 404"):
            ModelManager(_settings(tmp_path)).download("sam2")
    assert not (tmp_path / "sam2" / "config.json").exists()  # nothing half-installed
