"""scripts/deploy.sh and scripts/rollback.sh: shellcheck passes, and run against a stand-in
``docker`` (which records what it is asked) they move tagged images in the right order,
back up first, wait for /health, roll back on a failed deploy and on request."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [ROOT / "scripts" / n for n in ("deploy.sh", "rollback.sh", "_common.sh")]

FAKE_DOCKER = """#!/usr/bin/env bash
# Records each call; "compose ... up" also records the tag it would start.
echo "DEPLOY_TAG=${DEPLOY_TAG:-} $*" >> "$FAKE_LOG"
case "$*" in
  "image inspect"*missing*) exit 1 ;;
  compose*" up "*) echo "$DEPLOY_TAG" > "$FAKE_RUNNING" ;;
esac
exit 0
"""


def test_shellcheck_passes() -> None:
    shellcheck = require_binary("shellcheck")
    result = subprocess.run([shellcheck, "-x", *map(str, SCRIPTS)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[dict]:
    """A fake docker on PATH and a /health that is healthy unless tag 'broken' runs."""
    require_binary("curl")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    running = tmp_path / "running"

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            tag = running.read_text().strip() if running.exists() else ""
            self.send_response(503 if tag.startswith("broken") else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOY_", "COMPOSE_"))}
    env.update({
        "PATH": f"{bin_dir}:{env['PATH']}", "FAKE_LOG": str(tmp_path / "docker.log"),
        "FAKE_RUNNING": str(running), "DEPLOY_STATE_DIR": str(tmp_path / "state"),
        "DEPLOY_HEALTH_URL": f"http://127.0.0.1:{server.server_port}/health",
        "DEPLOY_HEALTH_TIMEOUT": "4", "COMPOSE_FILE": "docker-compose.yml",
    })
    yield {"env": env, "log": tmp_path / "docker.log", "running": running,
           "state": tmp_path / "state"}
    server.shutdown()


def run(rig: dict, script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / script), *args], env=rig["env"],
                          capture_output=True, text=True, timeout=120)


def calls(rig: dict) -> list[str]:
    lines = rig["log"].read_text().splitlines() if rig["log"].exists() else []
    rig["log"].write_text("")
    return [line for line in lines if " compose version" not in line]


def test_deploy_backup_switch_and_rollback(rig: dict) -> None:
    compose = f"compose -f {ROOT}/docker-compose.yml -p studio"
    first = run(rig, "deploy.sh", "1.0.0")
    assert first.returncode == 0, first.stderr
    assert calls(rig) == [
        "DEPLOY_TAG= image inspect video-message-studio:1.0.0",
        f"DEPLOY_TAG=1.0.0 {compose} up -d --remove-orphans",
    ]
    second = run(rig, "deploy.sh", "--workers", "3", "1.1.0")
    assert second.returncode == 0, second.stderr
    log = calls(rig)
    assert log[0] == "DEPLOY_TAG= image inspect video-message-studio:1.1.0"
    assert log[1].startswith(f"DEPLOY_TAG= {compose} exec -T studio python -m app.backup "
                             "create /data/backups/pre-deploy-")
    assert log[2] == f"DEPLOY_TAG=1.1.0 {compose} up -d --remove-orphans --scale worker=3"
    assert rig["running"].read_text().strip() == "1.1.0"

    back = run(rig, "rollback.sh")
    assert back.returncode == 0, back.stderr
    assert calls(rig)[-1] == f"DEPLOY_TAG=1.0.0 {compose} up -d --remove-orphans"
    again = run(rig, "rollback.sh")  # rolling back twice goes forward again
    assert again.returncode == 0, again.stderr
    assert rig["running"].read_text().strip() == "1.1.0"


def test_failed_deploy_rolls_back_by_itself(rig: dict) -> None:
    assert run(rig, "deploy.sh", "1.0.0").returncode == 0
    calls(rig)
    failed = run(rig, "deploy.sh", "--no-backup", "broken-2.0.0")
    assert failed.returncode == 1
    assert "1.0.0 is running again" in failed.stderr
    ups = [c.split()[0] for c in calls(rig) if " up -d" in c]
    assert ups == ["DEPLOY_TAG=broken-2.0.0", "DEPLOY_TAG=1.0.0"]
    assert rig["running"].read_text().strip() == "1.0.0"
    # the failed tag was never recorded: a rollback now has nothing newer to go to
    assert "broken" not in "".join(p.read_text() for p in rig["state"].iterdir())


@pytest.mark.parametrize(("args", "message"), [
    (("latest",), "real version tag"),
    (("../etc",), "bad tag"),
    (("missing-1.0",), "no image"),
    ((), "Deploy a tagged image"),
    (("--workers", "x", "1.0"), "--workers needs a number"),
])
def test_deploy_refuses_bad_requests(rig: dict, args: tuple, message: str) -> None:
    result = run(rig, "deploy.sh", *args)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not any(" up " in c for c in calls(rig))


def test_rollback_without_history_says_so(rig: dict) -> None:
    result = run(rig, "rollback.sh")
    assert result.returncode == 1 and "no previous deploy recorded" in result.stderr
