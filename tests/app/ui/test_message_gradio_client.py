"""The Gradio API ``/generate_message`` driven by gradio_client from a separate process, as a
person's script would: ``.submit()`` reports progress while the job runs, ``.predict()``
returns an MP4 that ffprobe accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.services import build_services
from tests.app.api.test_message import PORTRAIT, TEXT, ffprobe, judge
from tests.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("gradio_client_script.py")

pytestmark = pytest.mark.slow


@pytest.fixture
def studio_ui(settings, tmp_path: Path):
    services = build_services(settings.model_copy(update={
        "queue_url": f"sqlite:///{tmp_path}/data/queue.sqlite3", "workers": 2}))
    services.queue.start_consumer(2, install_signals=False)
    with LiveServer(services, with_ui=True) as server:
        yield server, services
    services.close()


def test_generate_message_from_another_process(studio_ui, tmp_path: Path) -> None:
    server, services = studio_ui
    out = tmp_path / "client.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), server.url + "/", str(PORTRAIT), TEXT, str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=400,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stdout + run.stderr
    seen = json.loads(out.read_text())

    # progress came through while the job ran: fractions rising, stage names in words
    fractions = [u["progress"] for u in seen["updates"] if u["progress"] is not None]
    assert any(0.0 < f < 1.0 for f in fractions), seen["updates"]
    assert fractions == sorted(fractions)
    descriptions = {u["desc"] for u in seen["updates"]}
    # the stage in words, with the time left once the job has run long enough to estimate it
    assert any(d.split(" · ")[0] == "animating the face" for d in descriptions), descriptions

    for path, music in ((Path(seen["video"]), True), (Path(seen["predict"]), False)):
        streams = {s["codec_type"]: s for s in ffprobe(path)["streams"]}
        assert streams["video"]["codec_name"] == "h264"
        assert (streams["video"]["width"], streams["video"]["height"]) == (512, 512)
        assert streams["audio"]["codec_name"] == "aac"
        judge(path, music=music)  # looked at and listened to

    # both calls were real queued message jobs, with music in the first only
    jobs = services.jobs.list(kind="message.generate")
    assert [j.status for j in jobs] == ["completed", "completed"]
    assert sorted(j.params["bgm"] for j in jobs) == ["celebration-bright", "none"]
