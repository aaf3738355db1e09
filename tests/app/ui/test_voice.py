"""The Voice tab through gradio_client against a live server (the API names scripts use)."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from pipelines.voice.create import PROFILE_STEPS
from tests.conftest import LiveServer
from tests.fixtures.voice import SENTENCES, make_services, ojt_speech, wav_bytes


@pytest.mark.slow
def test_voice_tab_api(settings: object, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    services = make_services(settings, tts_backends=["openjtalk", "piper"])
    services.queue.start_consumer(1, install_signals=False)  # /create_profile queues a job
    try:
        with LiveServer(services, with_ui=True) as server:  # type: ignore[arg-type]
            client = Client(server.url + "/", verbose=False)
            audio, note = client.predict("こんにちは、元気ですか？", "mei", "ja", 1.0, 0, 1.0,
                                         1.0, 1.0, api_name="/synthesize")
            samples, rate = sf.read(audio)
            assert rate == 24000
            assert len(samples) / rate > 0.8
            assert "OpenJTalk" in note and "`" not in note  # in people's words

            with pytest.raises(Exception, match="VOICE_TEXT_EMPTY"):
                client.predict("", "mei", "ja", 1, 0, 1, 1, 1, api_name="/synthesize")

            paths = []
            for i, sentence in enumerate(SENTENCES[:2]):
                path = tmp_path / f"rec{i}.wav"
                path.write_bytes(wav_bytes(ojt_speech(sentence, half_tone=3.0)))
                paths.append(handle_file(str(path)))
            job = client.submit("Tab voice", "ja", paths, None, api_name="/create_profile")
            table, summary, profiles, *_ = job.result()
            assert "✅" in summary, summary
            # it ran as a queued job, through every step
            [record] = services.jobs.list(kind="voice.profile")  # type: ignore[attr-defined]
            assert record.status == "completed"
            assert record.steps_completed == list(PROFILE_STEPS)
            assert "not cloning" in summary  # voice matching, said plainly
            assert "cloning" not in summary.replace("not cloning", "")
            assert "How your profile speaks" in summary  # measured on three axes
            rows = client.predict(api_name="/list_profiles")
            pid = rows["data"][0][0]
            assert pid.startswith("voice_")

            audio, note = client.predict("また明日。", f"profile:{pid}", "ja", 1, 0, 1, 1, 1,
                                         api_name="/synthesize")
            # the line says how the profile's voice was chosen, with its three measures
            assert "Measured for this profile in ja" in note
            assert "nearness to you" in note and "words kept" in note
            message, rows, *_ = client.predict(pid, api_name="/delete_profile")
            assert rows["data"] == [] or rows["data"] == [[None] * 7] or not any(rows["data"][0])
    finally:
        services.close()  # type: ignore[attr-defined]


def test_profile_progress_follows_the_job_steps(services: object) -> None:
    """The Voice tab's bar shows each step of the job as the worker reports it (it used to
    sit at 5 % for the whole synchronous call), then the finished job; a failed job comes
    back as its own error with the clips' verdicts."""
    import threading

    from app.ui.voice import wait_for_profile
    from models.errors import StudioError

    jobs = services.jobs  # type: ignore[attr-defined]
    job = jobs.create("voice.profile", {}, list(PROFILE_STEPS))
    seen: list[tuple[float, str]] = []
    reported = threading.Event()

    def progress(fraction: float, desc: str = "") -> None:
        seen.append((fraction, desc))
        reported.set()

    def worker() -> None:
        jobs.update(job.id, status="processing")
        for i, step in enumerate(PROFILE_STEPS):
            reported.clear()
            jobs.update(job.id, progress=100.0 * i / len(PROFILE_STEPS), current_step=step)
            reported.wait(5)  # the tab polled and saw this step
            reported.clear()
            reported.wait(5)
        jobs.update(job.id, status="completed", result={"profile": {"id": "openvoice_1"}})

    thread = threading.Thread(target=worker)
    thread.start()
    finished = wait_for_profile(services.jobs, job.id, progress, "en", poll_s=0.01)  # type: ignore[arg-type]
    thread.join()
    assert finished.result["profile"]["id"] == "openvoice_1"
    descs = [d for _, d in seen]
    for text in ("reading the recordings", "removing background noise", "checking the clips",
                 "measuring the voice", "searching the closest voice", "saving the profile"):
        assert text in descs, descs
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    failed = jobs.create("voice.profile", {}, list(PROFILE_STEPS))
    jobs.update(failed.id, status="failed", error={
        "code": "VOICE_SAMPLE_TOO_SHORT", "message": "a.wav: too short",
        "details": {"clips": [{"filename": "a.wav", "verdict": "rejected"}]}})
    with pytest.raises(StudioError) as info:
        wait_for_profile(services.jobs, failed.id, lambda *a, **k: None, "ja")  # type: ignore[arg-type]
    assert info.value.code == "VOICE_SAMPLE_TOO_SHORT"
    assert info.value.details["clips"][0]["filename"] == "a.wav"
