"""The voice pipeline as the app uses it: one VoiceKit per Services, and queuing a profile.

Shared by the REST routes, the UI and the message use cases."""

from __future__ import annotations

from typing import Any

from app.services import Services
from app.storage import new_key
from app.usecases.voice_evolve import evolution_answer, evolve_after_profile
from pipelines.voice.create import PROFILE_STEPS, refuse_undecodable, validate_profile_request
from pipelines.voice.jobs import KIND as PROFILE_KIND
from pipelines.voice.kit import VoiceKit
from pipelines.voice.profiles import ProfileStore


def voice_kit(services: Services) -> VoiceKit:
    """The voice pipeline's engines and profile store, built once per Services."""
    kit = services.voice_kit
    if kit is None:
        kit = VoiceKit(
            tts=services.chain("tts"), encoder=services.chain("voice_encoder"),
            converters=services.chain("voice_converter"), store=ProfileStore(services.storage),
            cache_dir=services.engine_settings.cache_dir, denoisers=services.chain("denoise"),
            judges=services.chain("naturalness"))
        services.voice_kit = kit
    return kit


def submit_profile(services: Services, clips: list[tuple[bytes, str]], *, name: str,
                   language: str, owner: str | None) -> dict[str, Any]:
    """Check what needs no audio work and that every clip decodes, store the clips, queue
    the job: for REST and UI. A refused request stores nothing."""
    name = validate_profile_request(clips, name, language)
    refuse_undecodable(clips)  # junk gets the job's VOICE_SAMPLE_AUDIO_* code now, not later
    stored = []
    for data, filename in clips:
        suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        ext = suffix if suffix.isascii() and suffix.isalnum() and len(suffix) <= 5 else "bin"
        stored.append({"key": services.storage.put(new_key("inputs/audio", ext), data),
                       "filename": filename})
    job = services.queue.submit(PROFILE_KIND, {"clips": stored, "name": name,
                                               "language": language, "owner": owner},
                                owner=owner)
    answer = {"task_id": job.id, "status": job.status, "steps": list(PROFILE_STEPS),
              "status_url": f"/api/voice/status/{job.id}",
              "estimated_time": round(2.0 + 0.4 * len(clips) * 10, 1)}
    evolving = evolve_after_profile(services, job, owner)  # the evolved voice, searched next
    if evolving is not None:
        answer["evolve"] = evolution_answer(evolving)
    return answer
