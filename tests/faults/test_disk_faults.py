"""A full disk and a read-only data dir in the middle of a render: the message
fails with a clear ``STORAGE_*`` error, nothing half-written is left or listed, the studio
keeps serving, and a retry once the disk is fine resumes from the render.

The files live on a real filesystem with a real limit: a small tmpfs mounted over the data
dir's ``files/`` (root may mount; without that privilege the test is skipped, and fails
under ``STUDIO_REQUIRE_SERVICES``)."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.services import build_services
from tests.app.api.test_message import PORTRAIT, ffprobe
from tests.conftest import LiveServer, unavailable
from tests.faults.cluster import wait_until

pytestmark = pytest.mark.slow

TEXT = "お誕生日おめでとう！素敵な一年になりますように。"


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    files = tmp_path / "data" / "files"
    files.mkdir(parents=True)
    done = _mount("-t", "tmpfs", "-o", "size=24m,mode=0755", "tmpfs", str(files))
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield files
    finally:
        subprocess.run(["umount", "-l", str(files)], capture_output=True)


def fill(path: Path) -> Path:
    """Write until the filesystem says ENOSPC: the disk is now full."""
    filler = path / "filler.bin"
    for size in (256 * 1024, 512):  # then the last bytes of the last block, too
        with pytest.raises(OSError) as full:
            _append_forever(filler, size)
        assert full.value.errno == errno.ENOSPC
    return filler


def _append_forever(path: Path, size: int) -> None:
    with path.open("ab", buffering=0) as handle:
        while True:
            handle.write(b"\0" * size)


def test_full_and_read_only_disk_during_a_render(small_disk: Path, settings,
                                                 tmp_path: Path) -> None:
    services = build_services(settings.model_copy(update={
        "queue_url": f"sqlite:///{tmp_path}/data/queue.sqlite3", "workers": 2,
        "min_free_mb": 0}))
    services.queue.start_consumer(2, install_signals=False)
    try:
        with LiveServer(services) as server:
            def status() -> dict:
                return httpx.get(f"{server.url}/api/video/status/{task_id}",
                                 timeout=10).json()["data"]

            def rendering() -> bool:
                record = services.queue.stages(task_id).get("video", {})
                return record.get("status") == "running" and record.get("step") == "render"

            def ended() -> dict:
                return wait_until(lambda: (s := status())["status"] in (
                    "completed", "failed", "cancelled") and s, 240, "the message to end")

            def nothing_half_written() -> None:
                assert list(small_disk.rglob(".tmp-*")) == []
                assert list(small_disk.rglob("*.mp4")) == []

            def still_serving() -> dict:
                health = httpx.get(f"{server.url}/health", timeout=30)
                assert health.status_code in (200, 503) and "data" in health.json()
                listing = httpx.get(f"{server.url}/api/messages", timeout=30)
                assert listing.status_code == 200
                [listed] = [m for m in listing.json()["data"]["messages"]
                            if m["task_id"] == task_id]
                assert listed["video_url"] is None and listed["error"]["code"].startswith(
                    "STORAGE_")  # a failed message offers no (half) video
                return health.json()["data"]

            answer = httpx.post(f"{server.url}/api/video/generate", timeout=60,
                                data={"text": TEXT, "bgm_type": "celebration"},
                                files={"image": ("me.jpg", PORTRAIT.read_bytes(), "image/jpeg")})
            assert answer.status_code == 202, answer.text
            task_id = answer.json()["data"]["task_id"]

            # 1. the disk fills up while the video renders
            wait_until(rendering, 240, "the render")
            filler = fill(small_disk)
            failed = ended()
            assert failed["status"] == "failed", failed
            assert failed["error"]["code"] == "STORAGE_FULL", failed["error"]
            assert failed["error"]["stage"] == "video"
            assert "disk is full" in failed["error"]["message"]
            nothing_half_written()
            still_serving()

            # 2. space again, the retry resumes at the render; the disk turns read-only
            filler.unlink()
            assert httpx.post(f"{server.url}/api/jobs/{task_id}/retry").status_code == 202
            wait_until(rendering, 240, "the render again")
            assert _mount("-o", "remount,ro", str(small_disk)).returncode == 0
            try:
                failed = ended()
                assert failed["status"] == "failed", failed
                assert failed["error"]["code"] == "STORAGE_READ_ONLY", failed["error"]
                assert failed["error"]["stage"] == "video"
                nothing_half_written()
                health = still_serving()
                assert health["storage"]["ok"] is False
                assert "not writable" in health["storage"]["info"]
            finally:
                _mount("-o", "remount,rw", str(small_disk))

            # 3. the disk is fine again: the retry finishes the message from the render
            assert httpx.post(f"{server.url}/api/jobs/{task_id}/retry").status_code == 202
            final = ended()
            assert final["status"] == "completed", final
            stages = services.queue.stages(task_id)
            assert stages["video"]["attempts"] == 3
            assert stages["image"]["attempts"] == 1 and stages["voice"]["attempts"] == 1
            video = tmp_path / "final.mp4"
            video.write_bytes(httpx.get(server.url + final["video_url"], timeout=30).content)
            assert {s["codec_type"] for s in ffprobe(video)["streams"]} == {"video", "audio"}
    finally:
        services.close()
