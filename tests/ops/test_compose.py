"""The compose files through Debian's ``docker-compose config`` (no Docker engine needed):
the one-machine file runs with no configuration, the production file needs its secrets and
wires app, workers, Redis, MinIO, VOICEVOX, Prometheus and Grafana consistently with the
monitoring files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parents[2]
SECRETS = "MINIO_ROOT_PASSWORD=test-minio-secret\nGRAFANA_ADMIN_PASSWORD=test-grafana\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The compose files and what they mount, in a folder of their own (no stray .env)."""
    for name in ("docker-compose.yml", "docker-compose.prod.yml", ".env.example"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    return tmp_path


def compose(project: Path, *args: str) -> subprocess.CompletedProcess:
    binary = require_binary("docker-compose")
    return subprocess.run([binary, *args], cwd=project, capture_output=True, text=True,
                          timeout=120)


def config(project: Path, file: str, *extra: str) -> dict:
    result = compose(project, "-f", file, *extra, "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_one_machine_file_needs_no_configuration(project: Path) -> None:
    doc = config(project, "docker-compose.yml")
    [name] = doc["services"]
    studio = doc["services"][name]
    assert studio["environment"]["STUDIO_WORKERS"] == "2"  # embedded workers
    assert "STUDIO_QUEUE_URL" not in studio["environment"]  # SQLite in the data volume
    assert any(v.endswith(":/data:rw") or v.endswith(":/data") for v in
               (m if isinstance(m, str) else f"{m['source']}:{m['target']}"
                for m in studio["volumes"]))
    assert all(str(p).startswith("127.0.0.1:") for p in studio["ports"])


def test_production_file_refuses_to_run_without_its_secrets(project: Path) -> None:
    (project / ".env").write_text((project / ".env.example").read_text())
    result = compose(project, "-f", "docker-compose.prod.yml", "config", "-q")
    assert result.returncode != 0
    assert "MINIO_ROOT_PASSWORD" in result.stderr


def test_production_file_wires_every_service(project: Path) -> None:
    (project / ".env").write_text((project / ".env.example").read_text() + SECRETS)
    doc = config(project, "docker-compose.prod.yml", "--profile", "voicevox")
    services = doc["services"]
    assert set(services) == {"app", "worker", "redis", "minio", "minio-init", "voicevox",
                             "prometheus", "grafana"}
    app, worker = services["app"], services["worker"]
    assert app["environment"]["STUDIO_WORKERS"] == "0"
    for service in (app, worker):
        env = service["environment"]
        assert env["STUDIO_QUEUE_URL"].startswith("redis://redis:")
        assert env["STUDIO_STORAGE"] == "s3" and env["STUDIO_S3_BUCKET"]
        assert env["AWS_SECRET_ACCESS_KEY"] == "test-minio-secret"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert service["depends_on"]["minio-init"]["condition"] == \
            "service_completed_successfully"
    assert worker["command"] == ["huey_consumer", "app.worker.huey", "-k", "thread", "-w", "2"]
    assert worker["stop_signal"] == "SIGINT"  # huey's graceful stop
    assert worker["deploy"]["replicas"] >= 1
    # the bucket is created at start
    init = " ".join(services["minio-init"]["command"])
    assert "mc mb --ignore-existing" in init and "local/$$S3_BUCKET" in init
    assert services["minio-init"]["environment"]["S3_BUCKET"] == \
        app["environment"]["STUDIO_S3_BUCKET"]
    assert services["voicevox"]["profiles"] == ["voicevox"]

    # Prometheus scrapes what the services expose
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    assert jobs["studio"]["static_configs"][0]["targets"] == ["app:7860"]
    [dns] = jobs["studio-workers"]["dns_sd_configs"]
    assert dns["names"] == ["worker"]
    assert str(dns["port"]) == worker["environment"]["STUDIO_METRICS_PORT"]
    mounts = [m if isinstance(m, str) else f"{m['source']}:{m['target']}"
              for m in services["prometheus"]["volumes"]]
    assert any(m.split(":")[0].endswith("deploy/prometheus") and ":/etc/prometheus" in m
               for m in mounts)
    # Grafana gets the provisioning files and the dashboard folder the provider reads
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/studio.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mounts = [m if isinstance(m, str) else f"{m['source']}:{m['target']}"
              for m in services["grafana"]["volumes"]]
    assert any(m.split(":")[1] == path and m.split(":")[0].endswith("deploy/grafana/dashboards")
               for m in mounts)
    assert any(m.split(":")[1] == "/etc/grafana/provisioning" for m in mounts)
    # nothing is published beyond loopback: nginx is the front door
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_validator_rejects_a_broken_file(project: Path) -> None:
    """docker-compose config really validates: an unknown key fails."""
    broken = (project / "docker-compose.yml").read_text().replace(
        "    init: true\n", "    init: true\n    restartt: always\n")
    (project / "docker-compose.yml").write_text(broken)
    result = compose(project, "-f", "docker-compose.yml", "config", "-q")
    assert result.returncode != 0
    assert "restartt" in result.stderr
