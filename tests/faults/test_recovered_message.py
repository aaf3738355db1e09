"""A recovered message, judged like a person would, in the fast lane: a message whose video
stage lost its worker at the start of the render is taken back by the reaper once its lease
has run out, rendered again, and the MP4 the studio then serves is watched and listened to by
the quality harness (a face that moves its lips with the voice, no frozen picture, loudness,
durations), not only probed for streams. The real kills of real processes are in
``test_crash_restart.py`` and ``test_scale_out_kills.py`` (slow)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.runner.stages import StageScheduler
from app.services import build_services
from quality import contact_sheet, measure, table
from tests.app.api.test_message import PORTRAIT
from tests.conftest import wait_for_job

# long enough (over 2 s of voice) for the harness to judge the lips
TEXT = "お誕生日おめでとう！素敵な一年になりますように。これからもよろしくお願いします。"


@pytest.fixture
def studio(settings, tmp_path: Path):
    services = build_services(settings.model_copy(update={
        "queue_url": f"sqlite:///{tmp_path}/data/queue.sqlite3", "workers": 0}))
    # the default 20 s leases: a short one would also expire for living stages whose renewals
    # stall on a loaded machine (the lost render's lease is run out by the test instead)
    with TestClient(create_app(services, with_ui=False)) as client:
        yield client, services
    services.close()


def test_message_whose_render_lost_its_worker_is_whole(studio, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    client, services = studio
    run_held = StageScheduler._run_held_stage
    lost: list[int] = []

    def worker_dies_in_the_first_render(self, job, stage, record, token):
        if stage.name == "video" and not lost:
            # what a killed worker leaves once its lease has run out: the stage 'running'
            # under a lease past its deadline, which nobody renews
            lost.append(record["attempts"])

            def run_out(stored: dict) -> bool:
                stored["lease_until"] = time.time() - 1
                return True

            self.parts.jobs.store.modify_stage(job.id, stage.name, run_out)
            return None
        return run_held(self, job, stage, record, token)

    monkeypatch.setattr(StageScheduler, "_run_held_stage", worker_dies_in_the_first_render)
    answer = client.post("/api/video/generate", data={"text": TEXT, "bgm_type": "celebration"},
                         files={"image": ("me.jpg", PORTRAIT.read_bytes(), "image/jpeg")})
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["data"]["task_id"]
    services.queue.start_consumer(1, install_signals=False)
    try:
        deadline = time.monotonic() + 120
        while not lost or services.queue.stages(job_id)["video"].get("status") == "running":
            assert time.monotonic() < deadline, services.queue.stages(job_id)
            services.queue.reap()  # takes the stage of the lost worker back
            time.sleep(0.1)
        final = wait_for_job(services, job_id, timeout=240)
    finally:
        services.queue.stop_consumer()
    assert final["status"] == "completed", final
    stages = services.queue.stages(job_id)
    assert lost == [1]
    assert stages["video"]["attempts"] == 2
    assert stages["video"]["lost_workers"] == [services.queue.worker_name]
    assert all(stages[s]["attempts"] == 1 for s in ("image", "voice", "prosody", "bgm"))

    status = client.get(f"/api/video/status/{job_id}").json()["data"]
    video = tmp_path / "recovered.mp4"
    video.write_bytes(client.get(status["video_url"]).content)
    report = measure(video, text=TEXT, music=True)
    if not report.ok:
        contact_sheet(video, video.with_suffix(".png"), report)
    assert report.ok, f"{table([report])}\n{[report.checks[n] for n in report.failed]}"
    assert report.checks["lips"].detail.startswith("over ")  # judged over the speech frames
    assert report.checks["frozen"].value < 1.0
