"""The voice pipeline as the app uses it: one VoiceKit per Services, and queuing a profile.

Shared by the REST routes, the UI and the message use cases."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from app.services import Services
from app.storage import Storage, new_key
from app.usecases.tasks import owned_task, progress_fields
from app.usecases.voice_evolve import (
    evolution_answer,
    evolution_status_view,
    evolve_after_profile,
    evolve_answer,
    submit_evolution,
)
from models.base import Speech
from models.chain import FallbackChain
from models.errors import InvalidInput, NotFound
from pipelines.media import encode_audio, encode_wav
from pipelines.voice.clips import check_clip
from pipelines.voice.create import PROFILE_STEPS, refuse_undecodable, validate_profile_request
from pipelines.voice.evolve_jobs import KIND as EVOLVE_KIND
from pipelines.voice.jobs import KIND as PROFILE_KIND
from pipelines.voice.kit import VoiceKit
from pipelines.voice.options import VoiceOptions
from pipelines.voice.profiles import OwnerCheck, Profile, ProfileStore, public_profile
from pipelines.voice.ref import VoiceRef
from pipelines.voice.reports import SynthesisReport
from pipelines.voice.speech import VoiceChoice, list_voices


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
    evolving = evolve_after_profile(services.settings, services.queue, job, owner)  # the evolved voice, searched next
    if evolving is not None:
        answer["evolve"] = evolution_answer(evolving)
    return answer


INLINE_MAX_BYTES = 1_000_000
"""Audio up to this size (about 20 s of 24 kHz WAV) comes back inline as base64 unless the
request says ``return_base64: false``."""


def profiles_for(services: Services, visible: OwnerCheck | None) -> ProfileStore:
    """The voice profiles a caller may see (``visible`` None: all of them)."""
    return voice_kit(services).store.scoped(visible)


def engines(services: Services) -> list[dict[str, Any]]:
    """Each speech engine, whether it is available, and its built-in voices."""
    return list_voices(voice_kit(services).tts)


def built_in_voices(services: Services) -> list[dict[str, Any]]:
    """Every built-in voice of the available engines (``id``, ``name``, ``language``...)."""
    return [v for engine in engines(services) for v in engine["voices"]]


def voices_answer(services: Services) -> dict[str, Any]:
    """``GET /api/voice/voices``: every voice (with its engine's availability) and engine."""
    listed = engines(services)
    flat = [{**v, "available": e["available"]} for e in listed for v in e["voices"]]
    return {"voices": flat, "engines": [{k: e[k] for k in ("engine", "available", "reason")}
                                        for e in listed]}


def choice_of(voice: str | None) -> VoiceChoice:
    """A voice spelled as one string (a built-in voice id or ``profile:...``)."""
    return VoiceChoice.of(VoiceRef.parse(voice or ""))


def choice_from_fields(voice_type: str, voice: str | None, speaker: int | str | None,
                       profile_id: str | None) -> VoiceChoice:
    """REST's ``voice_type``, ``voice`` (or a VOICEVOX ``speaker``) and ``profile_id``."""
    if speaker is not None and not voice:
        voice = str(VoiceRef.voicevox(speaker))
    return VoiceChoice.from_fields(voice_type, voice, profile_id)


def profile_choice(profile_id: str) -> VoiceChoice:
    return VoiceChoice.of(VoiceRef("profile", profile_id))


def speak(services: Services, text: str, choice: VoiceChoice, *, language: str,
          options: VoiceOptions | dict[str, Any] | None = None,
          profiles: ProfileStore | None = None,
          progress: Callable[[float, str], None] | None = None
          ) -> tuple[Speech, SynthesisReport]:
    """Say ``text`` in the chosen voice (a profile looked up in ``profiles``)."""
    if isinstance(options, dict):
        options = VoiceOptions(**options)
    kwargs: dict[str, Any] = {"progress": progress} if progress is not None else {}
    return voice_kit(services).synthesize(text, choice=choice, language=language,
                                          options=options, profiles=profiles, **kwargs)


def speech_payload(storage: Storage, speech: Speech, report: SynthesisReport, fmt: str,
                   inline: bool | None) -> dict[str, Any]:
    """Store the audio under ``voices/{engine}/`` and describe it as the seed does."""
    if fmt not in ("wav", "mp3"):
        raise InvalidInput(f"Unsupported output format {fmt!r}.", code="VOICE_INVALID_FORMAT",
                           message_ja=f"出力形式 {fmt!r} には対応していません。",
                           details={"allowed": ["wav", "mp3"]})
    data = encode_audio(speech.audio, fmt)
    key = storage.put(new_key(f"voices/{report.engine}", fmt), data)
    payload: dict[str, Any] = {
        "audio_url": storage.url(key),
        "audio_key": key,
        "audio_format": fmt,
        "sample_rate": speech.audio.sample_rate,
        "duration": round(speech.audio.duration, 3),
        "size_bytes": len(data),
        "sentences": [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text}
                      for s in speech.sentences],
        **report.as_dict(),
    }
    if inline or (inline is None and len(data) <= INLINE_MAX_BYTES):
        payload["audio_data_base64"] = base64.b64encode(data).decode("ascii")
    return payload


def keep_for_an_hour(storage: Storage, speech: Speech, engine: str) -> str:
    """Keep a tab's speech under ``temp/`` (an hour): the other tabs' "use latest" offer
    it to its maker."""
    return storage.put(new_key(f"temp/voices/{engine}", "wav"), encode_wav(speech.audio))


def check_clips(clips: list[tuple[bytes, str]]) -> list[dict[str, Any]]:
    """Each clip's verdict, as a profile job would give it (nothing is stored)."""
    return [check_clip(data, name, i)[1].as_dict() for i, (data, name) in enumerate(clips)]


def profile_answer(profile: Profile) -> dict[str, Any]:
    """A profile as REST shows it."""
    return public_profile(profile)


def profile_status_view(services: Services, task_id: str,
                        owns: Callable[[str | None], bool] = lambda owner: True
                        ) -> dict[str, Any]:
    """The profile job (or the evolved-voice search, which shares the route) as the API
    shows it; someone else's reads as not found."""
    job = owned_task(services.jobs, task_id, (PROFILE_KIND, EVOLVE_KIND), owns,
                     lambda: NotFound(
                         f"No voice profile task {task_id!r}.", code="VOICE_TASK_NOT_FOUND",
                         message_ja=f"ボイスプロファイルのタスク {task_id!r} が見つかりません。"))
    if job.kind == EVOLVE_KIND:
        return evolution_status_view(voice_kit(services).store, job)
    data = progress_fields(job)
    result = job.result or {}
    if job.status == "completed":
        data["profile_id"] = result.get("profile_id")
        data["profile"] = result.get("profile")
        data["processing_time"] = result.get("processing_time")
    if job.error:
        data["error"] = job.error
    return data


class Voices:
    """The voice use cases over one app's services, for a door that takes only them (the
    REST voice router, the Voice and Message tabs): speaking, the voices and profiles a
    caller sees, queuing a profile or its evolved-voice search, and a task's status. It
    holds the services only for the VoiceKit they cache (:func:`voice_kit`)."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @property
    def storage(self) -> Storage:
        return self._services.storage

    def profiles(self, visible: OwnerCheck | None) -> ProfileStore:
        return profiles_for(self._services, visible)

    def voices(self) -> dict[str, Any]:
        return voices_answer(self._services)

    def engines(self) -> list[dict[str, Any]]:
        return engines(self._services)

    def built_in_voices(self) -> list[dict[str, Any]]:
        return built_in_voices(self._services)

    def tts(self) -> FallbackChain[Any]:
        """The speech engines (a blend of two voices is read by the engine that makes it)."""
        return voice_kit(self._services).tts

    def speak(self, text: str, choice: VoiceChoice, *, language: str,
              options: VoiceOptions | dict[str, Any] | None = None,
              profiles: ProfileStore | None = None,
              progress: Callable[[float, str], None] | None = None
              ) -> tuple[Speech, SynthesisReport]:
        return speak(self._services, text, choice, language=language, options=options,
                     profiles=profiles, progress=progress)

    def submit_profile(self, clips: list[tuple[bytes, str]], *, name: str, language: str,
                       owner: str | None) -> dict[str, Any]:
        return submit_profile(self._services, clips, name=name, language=language,
                              owner=owner)

    def submit_evolution(self, profile_id: str, *, owner: str | None,
                         budget_s: float | None) -> dict[str, Any]:
        return evolve_answer(submit_evolution(self._services.settings, self._services.queue,
                                              profile_id, owner=owner,
                                              budget_s=budget_s))

    def status(self, task_id: str, owns: Callable[[str | None], bool]) -> dict[str, Any]:
        return profile_status_view(self._services, task_id, owns)
