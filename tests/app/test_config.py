"""Settings: defaults, STUDIO_* variables, .env, and one clear line for bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.config import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults(settings) -> None:
    fresh = load_settings()
    assert fresh.host == "127.0.0.1"
    assert fresh.port == 7860
    assert fresh.storage == "local"
    assert fresh.allow_downloads is False
    assert fresh.resolved_queue_url.startswith("sqlite:///")
    assert fresh.tts_backends[0] == "kokoro"


def test_env_and_dotenv(settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("STUDIO_PORT=9000\nSTUDIO_WORKERS=3\n")
    monkeypatch.setenv("STUDIO_PORT", "9100")  # the environment beats .env
    monkeypatch.setenv("STUDIO_TTS_BACKENDS", "voicevox, kokoro")
    loaded = load_settings()
    assert loaded.port == 9100
    assert loaded.workers == 3
    assert loaded.tts_backends == ["voicevox", "kokoro"]


@pytest.mark.parametrize(
    ("env", "value", "fragment"),
    [
        ("STUDIO_PORT", "not-a-port", "STUDIO_PORT"),
        ("STUDIO_STORAGE", "ftp", "STUDIO_STORAGE"),
        ("STUDIO_TTS_BACKENDS", "kokoro,espeak", "unknown engine espeak"),
        ("STUDIO_QUEUE_URL", "amqp://x", "STUDIO_QUEUE_URL"),
        ("STUDIO_WORKERS", "-1", "STUDIO_WORKERS"),
    ],
)
def test_invalid_setting_is_one_clear_line(settings, monkeypatch: pytest.MonkeyPatch,
                                           env: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    assert fragment in message


def test_s3_needs_bucket(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_STORAGE", "s3")
    with pytest.raises(SettingsError, match="STUDIO_S3_BUCKET"):
        load_settings()


def test_launch_rejects_bad_setting_with_exit_2(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "STUDIO_PORT": "abc", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(ROOT / "launch.py"), "--no-browser"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("invalid setting: STUDIO_PORT")


def test_launch_help_lists_flags() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "launch.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for flag in ("--host", "--port", "--data-dir", "--workers", "--no-browser"):
        assert flag in proc.stdout


def test_unknown_variable_names_the_closest_known_one(settings) -> None:
    from app.config import unknown_variables

    found = dict(unknown_variables({
        "STUDIO_VIDEO_BACKENDS": "wav2lip", "STUDIO_JWT_SECRT": "x", "STUDIO_PORT": "1",
        "STUDIO_REQUIRE_SERVICES": "1", "STUDIO_XYZZY": "1", "HOME": "/"}))
    assert found == {"STUDIO_VIDEO_BACKENDS": "STUDIO_TALKING_HEAD_BACKENDS",
                     "STUDIO_JWT_SECRT": "STUDIO_JWT_SECRET", "STUDIO_XYZZY": None}


def test_unknown_variable_in_dotenv_warns_once(settings, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    from app.config import warn_unknown_variables

    (tmp_path / ".env").write_text("STUDIO_MAX_QUEUE=3\nSTUDIO_PORT=9000\n")
    with caplog.at_level("WARNING", logger="studio.config"):
        lines = warn_unknown_variables({"STUDIO_WORKERS": "1"})
    assert lines == ["unknown setting STUDIO_MAX_QUEUE is ignored; did you mean "
                     "STUDIO_MAX_QUEUED?"]
    assert [r.getMessage() for r in caplog.records] == lines


def test_launch_warns_once_about_a_misspelt_variable(tmp_path: Path) -> None:
    """From the entry point: the studio starts, and its log names the typo and the fix."""
    from tests.conftest import free_port

    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
           "STUDIO_VIDEO_BACKENDS": "builtin", "STUDIO_WORKERS": "0",
           "STUDIO_LOG_FORMAT": "text", "STUDIO_PORT": str(free_port())}
    proc = subprocess.Popen([sys.executable, str(ROOT / "launch.py"), "--no-browser"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "studio ready" in line:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    warnings = [line for line in seen if "STUDIO_VIDEO_BACKENDS" in line]
    assert len(warnings) == 1, seen
    assert "did you mean STUDIO_TALKING_HEAD_BACKENDS" in warnings[0]
