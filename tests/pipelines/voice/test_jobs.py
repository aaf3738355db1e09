"""The ``voice.profile`` job: its steps in order, cancel and crash leave nothing, a rerun
overwrites its own profile, and the calibration cache spares the built-in voices' work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.storage import LocalStorage, new_key
from models.base import Audio, EngineSettings
from models.chain import FallbackChain
from models.errors import Cancelled, NotFound
from models.registry import build_chain
from pipelines.voice.calibration import CalibrationCache
from pipelines.voice.create import PROFILE_STEPS
from pipelines.voice.jobs import create_profile_job, profile_id_for
from pipelines.voice.profiles import ProfileStore
from tests.conftest import unavailable
from tests.fixtures.voice import SENTENCES, CountingVoice, fresh_process, ojt_speech, wav_bytes


class FlatEncoder:
    """A stand-in speaker encoder (the job's wiring does not depend on the embedding)."""

    name = "resemblyzer"

    def available(self) -> tuple[bool, str]:
        return True, "stand-in"

    def embed(self, clips: list[Audio]) -> np.ndarray:
        return np.ones(256, np.float32) / 16.0

    def close(self) -> None:
        pass


class Ctx:
    """A JobContext over real local storage that records what the job reports."""

    def __init__(self, root: Path, job_id: str = "job-1", cancel_at: str | None = None) -> None:
        self.job_id = job_id
        self.storage = LocalStorage(root)
        self.engine_settings = EngineSettings(cache_dir=root / "cache")
        self.cancel_at = cancel_at
        self.steps: list[str] = []
        self.fractions: list[float] = []
        self.done: list[str] = []
        self.chains = {"tts": FallbackChain("tts", []),
                       "voice_encoder": FallbackChain("voice_encoder", [FlatEncoder()]),
                       "voice_converter": FallbackChain("voice_converter", []),
                       "denoise": build_chain("denoise", ["deepfilternet"], EngineSettings()),
                       "naturalness": FallbackChain("naturalness", [])}

    def progress(self, fraction: float, step: str) -> None:
        if step == self.cancel_at:
            raise Cancelled("cancelled", code="QUEUE_JOB_CANCELLED")
        if not self.steps or self.steps[-1] != step:
            self.steps.append(step)
        self.fractions.append(fraction)

    def step_done(self, step: str) -> None:
        if step not in self.done:
            self.done.append(step)

    def chain(self, capability: str) -> FallbackChain:
        return self.chains[capability]

    def observe_stage(self, stage: str, backend: str | None, seconds: float) -> None:
        pass

    def new_key(self, prefix: str, extension: str) -> str:
        return new_key(prefix, extension)


def _params(ctx: Ctx, count: int = 2) -> dict[str, Any]:
    clips = []
    for i, sentence in enumerate(SENTENCES[:count]):
        key = ctx.storage.put(new_key("inputs/audio", "wav"), wav_bytes(ojt_speech(sentence)))
        clips.append({"key": key, "filename": f"take{i}.wav"})
    return {"clips": clips, "name": "Taro", "language": "ja", "owner": "alice"}


def _profile_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "voices").rglob("*") if p.is_file()) \
        if (root / "voices").exists() else []


def test_job_reports_every_step_in_order_and_the_profile_appears(tmp_path: Path) -> None:
    ctx = Ctx(tmp_path)
    params = _params(ctx)
    result = create_profile_job(ctx, params)
    # no matcher in this chain, so no search: every other step, in order
    assert ctx.steps == [s for s in PROFILE_STEPS if s != "matching search"]
    assert ctx.done == list(PROFILE_STEPS)
    assert ctx.fractions == sorted(ctx.fractions) and ctx.fractions[-1] == 1.0
    pid = result["profile_id"]
    assert pid == profile_id_for("job-1")
    store = ProfileStore(ctx.storage)
    assert [p.id for p in store.list()] == [pid]
    assert store.get(pid).owner == "alice"
    assert result["profile"]["sample_stats"]["count"] == 2
    for clip in params["clips"]:  # the uploads are not kept once the profile exists
        assert not ctx.storage.exists(clip["key"])


@pytest.mark.parametrize("step", ["denoise", "embedding", "save"])
def test_cancel_at_any_step_leaves_no_profile(tmp_path: Path, step: str) -> None:
    ctx = Ctx(tmp_path, cancel_at=step)
    params = _params(ctx, 1)
    with pytest.raises(Cancelled):
        create_profile_job(ctx, params)
    assert ProfileStore(ctx.storage).list() == []
    assert _profile_files(tmp_path) == []
    assert ctx.storage.exists(params["clips"][0]["key"])  # kept for a retry


def test_crash_while_saving_removes_the_half_written_files(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = Ctx(tmp_path)
    params = _params(ctx, 1)
    real_put = ctx.storage.put

    def failing_put(key: str, data: bytes) -> str:
        if key.endswith("profile.json"):
            raise OSError("disk full")
        return real_put(key, data)

    monkeypatch.setattr(ctx.storage, "put", failing_put)
    with pytest.raises(OSError):
        create_profile_job(ctx, params)
    assert _profile_files(tmp_path) == []  # reference.wav and embedding.npy went too
    with pytest.raises(NotFound):
        ProfileStore(ctx.storage).get(profile_id_for("job-1"))


def test_a_rerun_of_the_same_job_overwrites_its_profile(tmp_path: Path) -> None:
    """A worker killed after writing some files reruns the job (recover()): same id, one
    profile, not two."""
    first = Ctx(tmp_path)
    pid = create_profile_job(first, _params(first, 1))["profile_id"]
    again = Ctx(tmp_path)
    assert create_profile_job(again, _params(again, 1))["profile_id"] == pid
    assert [p.id for p in ProfileStore(again.storage).list()] == [pid]


def test_calibration_cache_survives_a_restart_without_speaking_again(tmp_path: Path,
                                                                     monkeypatch) -> None:
    from pipelines.voice.calibration import prepare_calibration

    voice = CountingVoice()
    tts = FallbackChain("tts", [voice])
    embeds: list[int] = []

    class Matcher:
        encoder_name = "stand-in"

        def embed(self, audio: Audio) -> np.ndarray:
            embeds.append(len(audio.samples))
            return np.full(4, float(len(audio.samples)), np.float32)

    assert prepare_calibration(tts, Matcher(), tmp_path, languages=["ja"]) == len(voice.VOICES)
    assert voice.calls == len(voice.VOICES) and len(embeds) == len(voice.VOICES)
    files = list((tmp_path / "voice_calibration").glob("*.npz"))
    assert len(files) == len(voice.VOICES)
    monkeypatch.setattr(CalibrationCache, "_memory", {})  # a fresh process
    prepare_calibration(tts, Matcher(), tmp_path, languages=["ja"])
    assert voice.calls == len(voice.VOICES) and len(embeds) == len(voice.VOICES)
    key = CalibrationCache.key("openjtalk", voice.VOICES[0].id, "ja", "stand-in")
    audio, vector = CalibrationCache(tmp_path).get(key, lambda: pytest.fail("spoke"),
                                                   lambda a: pytest.fail("embedded"))
    assert audio.duration > 1.0 and vector[0] == len(audio.samples)


@pytest.mark.slow
def test_clips_denoised_side_by_side_match_one_after_the_other() -> None:
    """create_profile denoises clips on several threads; each clip has its own denoiser
    state, so the samples are exactly those of a serial run."""
    from concurrent.futures import ThreadPoolExecutor

    from models.voice.denoise import DeepFilterDenoiser

    denoiser = DeepFilterDenoiser()
    if not denoiser.available()[0]:
        unavailable("deepfilternet not installed")
    rng = np.random.default_rng(2)
    clips = [Audio(ojt_speech(s) + rng.normal(0, 0.02, len(ojt_speech(s))).astype(np.float32),
                   24000) for s in SENTENCES]
    serial = [denoiser.denoise(c).samples for c in clips]
    with ThreadPoolExecutor(3) as pool:
        parallel = [a.samples for a in pool.map(denoiser.denoise, clips)]
    for one, other in zip(serial, parallel, strict=True):
        assert np.array_equal(one, other)


def test_a_profile_made_during_the_warm_up_says_nothing_twice_and_the_warm_up_waits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first profile can come while the warm-up is still filling the calibration cache.
    It makes what it needs itself, and the warm-up starts nothing more until the profile is
    made (the browser test's first profile took 100 s beside the warm-up); a sentence being
    said in one thread is waited for, never said a second time in the other."""
    import threading
    import time

    from pipelines.voice.jobs import warm_up
    from pipelines.voice.kit import VoiceKit

    fresh_process(monkeypatch)
    voice = CountingVoice()
    making = threading.Event()  # a profile is being made
    warming = threading.Event()
    said: list[tuple[bool, bool, str, str]] = []  # warm-up?, profile being made?, voice, text
    speak = voice.engine.synthesize

    def synthesize(request: Any) -> Any:
        warm = threading.current_thread().name == "warm-up"
        said.append((warm, making.is_set(), request.voice, request.text))
        if warm:
            warming.set()
            time.sleep(0.3)  # a slow machine: the profile comes while the warm-up speaks
        return speak(request)

    monkeypatch.setattr(voice, "synthesize", synthesize)
    settings = EngineSettings(cache_dir=tmp_path / "cache")
    chains = {"tts": FallbackChain("tts", [voice]),
              "voice_encoder": build_chain("voice_encoder", ["resemblyzer"], settings),
              "voice_converter": build_chain("voice_converter",
                                             ["timbre_filter", "voice_matching"], settings),
              "naturalness": build_chain("naturalness", ["dnsmos"], settings),
              "denoise": build_chain("denoise", ["deepfilternet"], settings)}
    kit = VoiceKit(tts=chains["tts"], encoder=chains["voice_encoder"],
                   converters=chains["voice_converter"],
                   store=ProfileStore(LocalStorage(tmp_path / "store")),
                   cache_dir=settings.cache_dir, judges=chains["naturalness"])
    warm = threading.Thread(target=warm_up, args=(chains.__getitem__, settings.cache_dir),
                            name="warm-up")
    warm.start()
    assert warming.wait(60)

    def progress(fraction: float, step: str) -> None:
        (making.clear if (step, fraction) == ("save", 1.0) else making.set)()

    clips = [(wav_bytes(ojt_speech(s)), f"take{i}.wav") for i, s in enumerate(SENTENCES)]
    profile = kit.create_profile(clips, name="P", language="ja", progress=progress)
    warm.join(120)
    assert not warm.is_alive() and profile.serving and "ja" in profile.serving
    spoken = [(v, t) for _, _, v, t in said]
    assert len(spoken) == len(set(spoken)), spoken  # nothing said twice
    assert any(not w for w, _, _, _ in said)  # the profile said what it needed itself
    assert not [s for s in said if s[0] and s[1]], said  # the warm-up waited meanwhile


@pytest.mark.slow
def test_a_warm_up_from_a_full_cache_loads_every_model_a_profile_uses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first start the warm-up only reads the calibration cache; it must still
    load the speaker encoders, the naturalness judge and the denoiser, or the first profile
    pays for them (the encoder alone took ~3 s of a 6-9 s profile)."""
    from pipelines.voice.jobs import warm_up

    fresh_process(monkeypatch)
    voice = CountingVoice()
    settings = EngineSettings(cache_dir=tmp_path / "cache")

    def chains() -> dict[str, FallbackChain[Any]]:
        return {"tts": FallbackChain("tts", [voice]),
                "voice_encoder": build_chain("voice_encoder", ["resemblyzer"], settings),
                "voice_converter": build_chain("voice_converter",
                                               ["timbre_filter", "voice_matching"], settings),
                "naturalness": build_chain("naturalness", ["distillmos"], settings),
                "denoise": build_chain("denoise", ["deepfilternet"], settings)}

    for capability, engines in chains().items():
        if not all(e.available()[0] for e in engines):
            unavailable(f"{capability}: {engines.available()[1]}")
    warm_up(chains().__getitem__, settings.cache_dir, languages=["ja"])
    said = voice.calls
    fresh_process(monkeypatch)  # the cache on disk
    fresh = chains()
    warm_up(fresh.__getitem__, settings.cache_dir, languages=["ja"])
    assert voice.calls == said  # everything came from the cache
    matcher = fresh["voice_converter"].get("voice_matching")
    models = {"profile encoder": fresh["voice_encoder"].get("resemblyzer")._model,
              "matching encoder": matcher._encoder.get()._model,
              "judge": fresh["naturalness"].get("distillmos")._model,
              "denoiser": fresh["denoise"].get("deepfilternet")._model}
    assert {name: model.loaded for name, model in models.items()} == dict.fromkeys(models, True)
