"""The evolved voice's wiring, without speech: the queue lets a job make way and run again,
REST queues the search and shows it on the status route, a new profile queues it when the
settings say so, and the Voice tab's panel says what it is in both languages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from models.base import Audio
from pipelines import tasks as pipeline_tasks
from pipelines.voice.evolve_jobs import KIND as EVOLVE_KIND
from pipelines.voice.jobs import profile_id_for
from pipelines.voice.profiles import Profile, ProfileStore
from tests.fixtures.voice import SENTENCES, make_services, ojt_speech, wav_bytes

MAKE_WAY_KIND = "test.make_way"
RUNS: list[bool] = []


def _make_way_once(ctx: pipeline_tasks.JobContext, params: dict[str, Any]) -> dict[str, Any]:
    RUNS.append(ctx.others_waiting())
    if len(RUNS) == 1:
        raise pipeline_tasks.MakeWay("other work first", delay=0)
    return {"runs": len(RUNS)}


@pytest.fixture
def make_way_kind(quiet_services: Any) -> Iterator[str]:
    """A job kind that makes way on its first run (registered for one test only)."""
    RUNS.clear()
    with quiet_services.queue.kinds.added(
            pipeline_tasks.JobKind(MAKE_WAY_KIND, ["work"], handler=_make_way_once)):
        yield MAKE_WAY_KIND


@pytest.fixture
def quiet_services(settings: Any) -> Iterator[Any]:
    """A memory queue with no workers: jobs stay queued until a test runs them."""
    services = make_services(settings)
    yield services
    services.close()


def _saved_profile(services: Any, profile_id: str = "openvoice_0000beef",
                   owner: str | None = None) -> str:
    store = ProfileStore(services.storage)
    reference = Audio(ojt_speech(SENTENCES[0]), 24000)
    profile = Profile(profile_id, "Evolve me", "ja", "2026-01-01T00:00:00+00:00",
                      "2026-01-01T00:00:00+00:00", owner=owner)
    store.save(profile, reference, np.ones(256, np.float32) / 16)
    return profile_id


def test_a_job_that_makes_way_goes_back_to_the_queue_and_runs_again(
        quiet_services: Any, make_way_kind: str) -> None:
    queue = quiet_services.queue
    job = queue.submit(make_way_kind, {})
    other = queue.submit(make_way_kind, {})  # waits: the first sees it
    pending = queue.huey.pending_count()
    queue.unstaged.run(job.id)
    again = quiet_services.jobs.get(job.id)
    assert RUNS == [True]
    assert again.status == "queued" and again.current_step == "other work first"
    assert again.attempts == 0  # making way is not a failed attempt
    assert again.task_id != job.task_id and again.lease is None
    assert queue.huey.pending_count() == pending + 1
    queue.cancel(other.id)
    queue.unstaged.run(job.id)
    done = quiet_services.jobs.get(job.id)
    assert done.status == "completed" and done.result["runs"] == 2
    assert RUNS == [True, False]  # the cancelled job no longer counts as waiting


def test_post_evolve_queues_the_search_and_status_shows_it(quiet_services: Any) -> None:
    profile_id = _saved_profile(quiet_services)
    with TestClient(create_app(quiet_services, with_ui=False)) as client:
        response = client.post(f"/api/voice/profiles/{profile_id}/evolve",
                               json={"budget_s": 30})
        assert response.status_code == 202, response.text
        data = response.json()["data"]
        assert data["kind"] == EVOLVE_KIND and data["profile_id"] == profile_id
        assert data["budget_s"] == 30 and "not a cloned recording" in data["label"]
        status = client.get(data["status_url"]).json()["data"]
        assert status["kind"] == EVOLVE_KIND and status["status"] == "queued"
        assert status["profile_id"] == profile_id and status["evolution"] is None
        missing = client.post("/api/voice/profiles/openvoice_00000000/evolve")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "VOICE_PROFILE_NOT_FOUND"
        default = client.post(f"/api/voice/profiles/{profile_id}/evolve").json()["data"]
        assert default["budget_s"] == quiet_services.settings.voice_evolve_seconds
    job = quiet_services.jobs.get(data["task_id"])
    assert job.params == {"profile_id": profile_id, "budget_s": 30.0, "owner": None}


def test_a_new_profile_queues_its_search_when_asked_to(settings: Any) -> None:
    from app.usecases.voices import submit_profile

    clips = [(wav_bytes(ojt_speech(SENTENCES[0])), "a.wav")]
    services = make_services(settings, voice_evolve_auto=True)
    try:
        answer = submit_profile(services, clips, name="Auto", language="ja", owner=None)
        evolve = answer["evolve"]
        assert evolve["profile_id"] == profile_id_for(answer["task_id"])
        params = services.jobs.get(evolve["task_id"]).params
        assert params["submitted_at"] > 0 and params["budget_s"] == 600.0
    finally:
        services.close()
    services = make_services(settings)  # off by default
    try:
        assert "evolve" not in submit_profile(services, clips, name="Manual", language="ja",
                                              owner=None)
    finally:
        services.close()


def test_voice_tab_panel_names_it_honestly_in_both_languages(quiet_services: Any) -> None:
    from app.ui import build_blocks, voice_desk
    from app.ui.text import plain
    from app.ui.voice_evolve import status_text

    build_blocks(quiet_services)  # the panel builds inside the Voice tab
    profile_id = _saved_profile(quiet_services)
    assert status_text(voice_desk(quiet_services), profile_id, "ja") == plain("evolve.none", "ja")
    ProfileStore(quiet_services.storage).set_evolution(profile_id, voice_source="evolved", evolution={
        "label": "evolved built-in voice (Kokoro style search), not a cloned recording",
        "label_ja": "進化させた内蔵音声（Kokoro スタイル探索）。録音の複製ではありません",
        "iteration": 12, "seconds": 64.2, "best": {"held_out": 0.71},
        "quick": {"held_out": 0.62}, "serves": {"ja": "evolved", "en": "matched"}})
    ja = status_text(voice_desk(quiet_services), profile_id, "ja")
    assert "録音の複製ではありません" in ja and "0.71" in ja and "0.62" in ja
    assert "ja: 進化させた声" in ja and "en: 簡易の声合わせ" in ja
    en = status_text(voice_desk(quiet_services), profile_id, "en")
    assert "not a cloned recording" in en and "ja: evolved voice" in en


def test_voice_tab_engine_note_names_the_evolved_voice() -> None:
    from app.ui.voice import engine_note
    from pipelines.voice.evolved import LABEL, LABEL_JA

    report = {"backend": "kokoro", "fallback_used": False, "fallback_method": None,
              "attempts": [{"backend": "kokoro", "outcome": "used", "reason": ""}],
              "method": "evolved_voice", "label": LABEL, "label_ja": LABEL_JA}
    assert LABEL in engine_note(report, "en") and "`kokoro` " not in engine_note(report, "en")
    assert LABEL_JA in engine_note(report, "ja")


def test_voice_tab_engine_note_names_the_converter_in_the_page_s_language() -> None:
    """The evolved voice, then frame matching: both named, honestly, in English and
    Japanese (a converter without a translation shows its own label)."""
    from app.ui.voice import engine_note
    from pipelines.voice.evolved import LABEL, LABEL_JA

    report = {"backend": "frame_matching", "fallback_used": False, "fallback_method": None,
              "attempts": [{"backend": "kokoro", "outcome": "used", "reason": ""}],
              "method": "evolved_voice", "label": LABEL, "label_ja": LABEL_JA,
              "conversion": {"backend": "frame_matching", "label": "voice matching (frame...)",
                             "attempts": [{"backend": "frame_matching", "outcome": "used",
                                           "reason": ""}]}}
    en, ja = engine_note(report, "en"), engine_note(report, "ja")
    assert LABEL in en and "rebuilt from your recordings" in en and "not cloning" in en
    assert LABEL_JA in ja and "録音のフレームから再合成" in ja and "クローンではありません" in ja
    report["conversion"] = {**report["conversion"], "backend": "openvoice",
                            "label": "OpenVoice v2 tone-colour conversion"}
    assert "OpenVoice v2 tone-colour conversion" in engine_note(report, "ja")
