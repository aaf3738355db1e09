"""``.env.example`` documents exactly the ``STUDIO_*`` variables the app reads (its Settings
fields, the per-capability ``*_BACKENDS`` included, plus direct ``os.environ`` reads), each
with its real default; the compose files pass only known variables."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from app.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
CODE_DIRS = ("app", "pipelines", "models")
LINE = re.compile(r"^#?\s?(STUDIO_[A-Z0-9_]+)=(.*)$")
ENV_READ = re.compile(r"""(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()\s*["'](STUDIO_[A-Z0-9_]+)["']""")
ENV_IN = re.compile(r"""["'](STUDIO_[A-Z0-9_]+)["']\s+(?:not\s+)?in\s+os\.environ""")
COMPOSE_DEFAULT = re.compile(r"\$\{(STUDIO_[A-Z0-9_]+):?-([^}]*)\}")


def documented() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = LINE.match(line.strip())
        if match:
            name, value = match.groups()
            assert name not in out, f"{name} documented twice"
            out[name] = value.strip()
    return out


def read_directly() -> dict[str, str]:
    """STUDIO_* names the code reads from os.environ itself -> where."""
    found = {}
    files = [p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py")] + [ROOT / "launch.py"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        for name in ENV_READ.findall(text) + ENV_IN.findall(text):
            found[name] = str(path.relative_to(ROOT))
    return found


def settings_vars() -> set[str]:
    prefix = Settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def test_scanner_finds_reads_in_the_code() -> None:
    direct = read_directly()
    assert direct.get("STUDIO_METRICS_PORT") == "app/worker.py"
    assert "STUDIO_TTS_BACKENDS" in settings_vars()
    assert "STUDIO_TALKING_HEAD_BACKENDS" in settings_vars()
    assert ENV_READ.findall('os.environ.get("STUDIO_X")  os.environ["STUDIO_Y"] '
                            "os.getenv('STUDIO_Z')") == ["STUDIO_X", "STUDIO_Y", "STUDIO_Z"]


def test_env_example_lists_exactly_what_the_app_reads() -> None:
    wanted = settings_vars() | set(read_directly())
    have = set(documented())
    assert not wanted - have, f"missing from .env.example: {sorted(wanted - have)}"
    assert not have - wanted, f"stale in .env.example (the app does not read): " \
                              f"{sorted(have - wanted)}"


def test_documented_defaults_are_the_real_defaults(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("STUDIO_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .env here
    defaults = load_settings()
    values = documented()
    fields = {f"STUDIO_{name.upper()}": name for name in Settings.model_fields}
    for var, name in fields.items():
        value = values[var]
        if value == "":
            assert getattr(defaults, name) in (None, "", []), f"{var}: documented empty"
        else:
            monkeypatch.setenv(var, value)
    assert load_settings().model_dump() == defaults.model_dump()


def compose_files() -> list[Path]:
    return sorted(ROOT.glob("docker-compose*.yml"))


def test_compose_files_pass_only_known_studio_variables() -> None:
    known = set(documented())
    assert compose_files()
    for path in compose_files():
        doc = yaml.safe_load(path.read_text())
        for name, service in doc["services"].items():
            env = service.get("environment") or {}
            keys = env if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
            unknown = [k for k in keys if k.startswith("STUDIO_") and k not in known]
            assert not unknown, f"{path.name} {name}: unknown {unknown}"
        for var, _ in COMPOSE_DEFAULT.findall(path.read_text()):
            assert var in known, f"{path.name}: ${{{var}}} is not a studio setting"


def test_single_machine_compose_defaults_match_the_app() -> None:
    """`${STUDIO_X:-d}` in docker-compose.yml must repeat the app's own default."""
    values = documented()
    pairs = COMPOSE_DEFAULT.findall((ROOT / "docker-compose.yml").read_text())
    assert pairs
    for var, default in pairs:
        assert default == values[var], f"{var}: compose says {default!r}, " \
                                       f".env.example {values[var]!r}"
