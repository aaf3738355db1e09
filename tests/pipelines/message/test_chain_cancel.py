"""Cancel inside a long render: the talking-head stage stops mid-frames (the renderer checks
for a cancel each few frames), its encoder process is gone, nothing half-made is stored, and
the one worker is free for the next message at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from app.services import build_services
from models.chain import FallbackChain
from tests.app.api.test_message import poll, submit
from tests.conftest import LiveServer, wait_for_job

pytestmark = pytest.mark.slow

LONG_TEXT = "今日は本当にありがとう。みんなのおかげで、素敵な一日になりました。" * 2


@pytest.fixture
def one_worker(settings, tmp_path: Path):
    services = build_services(settings.model_copy(update={
        "queue_url": f"sqlite:///{tmp_path}/data/queue.sqlite3", "workers": 1}))
    services.queue.start_consumer(1, install_signals=False)
    with LiveServer(services) as server:
        yield server, services
    services.close()


def _ffmpeg_children() -> list[psutil.Process]:
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "ffmpeg" in child.name():
                out.append(child)
        except psutil.NoSuchProcess:
            pass
    return out


class HeldRenderer:
    """The real built-in renderer, held inside its frame loop (at 30 % of the frames) until
    the test has asked for the cancel: where the render stands when the cancel arrives is
    then set by events, not by how fast this machine renders."""

    name = "builtin"

    def __init__(self, engine: object) -> None:
        self.engine = engine
        self.inside = threading.Event()  # the render reached 30 %
        self.asked = threading.Event()  # the cancel has been asked for

    def available(self) -> tuple[bool, str]:
        return self.engine.available()  # type: ignore[attr-defined]

    def render(self, request, progress):
        def held(fraction: float, step: str) -> None:
            if fraction >= 0.3 and not self.asked.is_set():
                self.inside.set()
                assert self.asked.wait(120)
            progress(fraction, step)

        return self.engine.render(request, held)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.engine.close()  # type: ignore[attr-defined]


def test_cancel_while_rendering_frees_the_worker(one_worker) -> None:
    server, services = one_worker
    held = HeldRenderer(services.chain("talking_head").get("builtin"))
    services._chains["talking_head"] = FallbackChain("talking_head", [held])
    task_id = submit(server, text=LONG_TEXT, bgm_type="none").json()["data"]["task_id"]
    assert held.inside.wait(300), services.queue.stages(task_id)  # inside its frame loop
    video = services.queue.stages(task_id)["video"]
    assert video["status"] == "running"
    before = video["progress"]
    asked = time.monotonic()
    answer = httpx.post(f"{server.url}/api/jobs/{task_id}/cancel")
    assert answer.status_code == 200, answer.text
    held.asked.set()

    final = wait_for_job(services, task_id, timeout=60)
    assert final["status"] == "cancelled"
    print(f"cancelled {time.monotonic() - asked:.2f} s after asking, video at {before:.2f}")
    record = services.queue.stages(task_id)["video"]
    assert record["status"] == "cancelled"
    assert before <= record["progress"] < 0.9  # it stopped mid-render, not at the end
    assert "output" not in record
    assert not list(services.storage.list("videos/final"))
    for proc in _ffmpeg_children():  # the encoder was killed, not left running
        proc.wait(timeout=10)
    assert not [p for p in _ffmpeg_children() if p.status() != psutil.STATUS_ZOMBIE]

    # the single worker is free: the next message runs to the end
    again = submit(server, bgm_type="none").json()["data"]["task_id"]
    assert poll(server, again)["status"] == "completed"
    assert services.queue.stages(again)["video"]["attempts"] == 1
