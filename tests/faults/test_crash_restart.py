"""A studio killed with SIGKILL comes back whole (crash consistency).

The single-process studio (``launch.py``: UI + API + two worker threads, SQLite queue, local
files) is killed in the middle of one message four times — while the image and voice
branches run, during the voice, during the render, and at the end of the render when the
encoder finishes the file — and restarted each time on the same data dir. The message ends
completed, each finished stage kept (never run again), each killed stage run again; no
half-written file is listed, served or left behind; a new message submitted after the last
restart works too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.runner.jobs import Jobs
from app.runner.stores import SqliteJobStore
from tests.app.api.test_message import PORTRAIT, ffprobe, judge
from tests.conftest import end_process, free_port
from tests.faults.cluster import ROOT, wait_until

pytestmark = pytest.mark.slow

TEXT = "お誕生日おめでとう！素敵な一年になりますように。みんなで応援しています。"


class Studio:
    """``python launch.py`` as a person runs it, on one data dir across restarts."""

    def __init__(self, data_dir: Path, logs: Path) -> None:
        self.data_dir = data_dir
        self.logs = logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
        env.update(PYTHONPATH=str(ROOT), STUDIO_LOG_FORMAT="json", STUDIO_LEASE_SECONDS="5",
                   STUDIO_MIN_FREE_MB="0")
        self.runs += 1
        log = (self.logs / f"studio{self.runs}.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "launch.py", "--port", str(self.port), "--data-dir",
             str(self.data_dir), "--workers", "2", "--no-browser"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._answers, 180, "the studio to answer", every=0.2)

    def _answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log_text()
        try:
            return httpx.get(f"{self.url}/health", timeout=5).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc)

    def log_text(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.logs.glob("studio*.log")))

    def submit(self, text: str = TEXT) -> str:
        answer = httpx.post(f"{self.url}/api/video/generate", timeout=60,
                            data={"text": text, "bgm_type": "celebration"},
                            files={"image": ("me.jpg", PORTRAIT.read_bytes(), "image/jpeg")})
        assert answer.status_code == 202, answer.text
        return answer.json()["data"]["task_id"]

    def status(self, task_id: str) -> dict[str, Any]:
        return httpx.get(f"{self.url}/api/video/status/{task_id}", timeout=10).json()["data"]


def test_studio_killed_at_each_stage_comes_back_whole(tmp_path: Path) -> None:
    data = tmp_path / "data"
    studio = Studio(data, tmp_path)
    studio.start()
    jobs = Jobs(SqliteJobStore(data / "jobs.sqlite3"))  # read beside the studio, as it is

    def running(stage: str, low: float = 0.05, high: float = 1.0,
                steps: tuple[str, ...] = ()) -> dict[str, Any] | None:
        record = jobs.store.load_stages(job_id).get(stage, {})
        if record.get("status") != "running":
            return None
        progress = float(record.get("progress", 0.0))
        step = str(record.get("step", ""))
        return record if low <= progress <= high or any(s in step for s in steps) else None

    def kill_when(what: str, check) -> dict[str, Any]:
        record = wait_until(check, 240, what, every=0.02)
        studio.kill()
        assert jobs.get(job_id).status == "processing"  # what a kill leaves behind
        studio.start()
        return record

    try:
        job_id = studio.submit()
        # 1. image and voice side by side
        kill_when("image and voice under way", lambda: running("image") and running("voice"))
        # 2. the voice (started again at once by the restart, not after a lease expiry)
        kill_when("the voice again", lambda: running("voice", 0.1))
        # 3. the render, then 4. the end of the render, where the encoder finishes the file
        kill_when("the render", lambda: running("video", 0.2, 0.6, ("render",))
                  and running("video", 0.2, 0.6))
        kill_when("the encode", lambda: running("video", 0.8, 1.0, ("encode", "store")))

        fresh = studio.submit()  # new messages work after all that
        final = wait_until(lambda: (s := studio.status(job_id))["status"] in (
            "completed", "failed", "cancelled") and s, 180, "the killed message to end")
        assert final["status"] == "completed", (final, studio.log_text())
        stages = jobs.store.load_stages(job_id)
        assert stages["image"]["attempts"] >= 2 and stages["voice"]["attempts"] >= 2
        assert stages["video"]["attempts"] == 3  # killed twice, the third run finished
        # finished stages were kept across the restarts, not run again
        assert stages["prosody"]["attempts"] == 1 and stages["bgm"]["attempts"] == 1
        assert all(r["status"] in ("done", "skipped") for r in stages.values()), stages
        assert jobs.get(job_id).attempts == 1 + sum(len(r.get("lost_workers", []))
                                                    for r in stages.values())
        second = wait_until(lambda: (s := studio.status(fresh))["status"] in (
            "completed", "failed", "cancelled") and s, 180, "the new message to end")
        assert second["status"] == "completed", second

        # what is served is whole and a person would take it (the quality harness watches
        # and listens: the face, the lips with the voice, no frozen picture, loudness, the
        # music, durations); nothing half-written is listed or left behind
        for task in (job_id, fresh):
            video = tmp_path / f"{task}.mp4"
            video.write_bytes(httpx.get(studio.url + studio.status(task)["video_url"],
                                        timeout=30).content)
            streams = {s["codec_type"] for s in ffprobe(video)["streams"]}
            assert streams == {"video", "audio"}
            report = judge(video, music=True, text=TEXT)
            assert report.checks["lips"].detail.startswith("over ")  # judged over the speech frames
        history = httpx.get(f"{studio.url}/api/messages", timeout=10).json()["data"]["messages"]
        assert {m["task_id"] for m in history} >= {job_id, fresh}
        leftovers = [p for p in (data / "files").rglob(".tmp-*")]
        assert leftovers == []
        for path in (data / "files" / "videos" / "final").glob("*.mp4"):
            ffprobe(path)  # every video on disk is a whole file (raises otherwise)
        assert jobs.count("processing") == 0 and jobs.count("queued") == 0
    finally:
        studio.stop()
    assert "Traceback" not in studio.log_text()
