"""The evolved voice with real speech (Kokoro, Resemblyzer): the search comes nearer to a
voice it only hears through scores; the ``voice.evolve`` job reports progress, is
cancelled, makes way for waiting work, resumes from its checkpoint and records on the
profile which voice serves; synthesis then speaks with the evolved style.

Candidates say two short sentences here (the real ones are longer) to keep this quick."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.storage import LocalStorage
from models.base import Audio, EngineSettings, SpeechRequest
from models.chain import FallbackChain
from models.errors import Cancelled
from models.speech.kokoro import KokoroSpeech
from models.speech.piper import PiperSpeech
from models.voice.matching import VoiceMatcher
from models.voice.naturalness import DnsMos
from models.voice.resemblyzer import ResemblyzerEncoder
from pipelines.tasks import MakeWay
from pipelines.voice import evolve as voice_evolve
from pipelines.voice import evolved as voice_evolved
from pipelines.voice.evolve_jobs import evolve_profile_job
from pipelines.voice.profiles import Profile, ProfileStore
from pipelines.voice.ref import VoiceRef
from pipelines.voice.speech import VoiceChoice, synthesize

pytestmark = pytest.mark.slow

SHORT = (("ja", "こんにちは。"), ("en", "Hello there."))
TARGET = "jm_kumo:0.7+jf_nezumi:0.3"
TARGET_TEXT = ("今日はとても良い天気ですね。", "明日の会議は十時から始まります。",
               "週末は家族と海へ出かけます。")


@dataclass
class Engines:
    settings: EngineSettings
    kokoro: KokoroSpeech
    encoder: ResemblyzerEncoder
    chains: dict[str, FallbackChain[Any]]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Engines:
    settings = EngineSettings(cache_dir=tmp_path_factory.mktemp("cache"))
    kokoro = KokoroSpeech(settings)
    encoder = ResemblyzerEncoder(settings)
    chains = {"tts": FallbackChain("tts", [kokoro, PiperSpeech(settings)]),
              "voice_encoder": FallbackChain("voice_encoder", [encoder]),
              "voice_converter": FallbackChain("voice_converter",
                                               [VoiceMatcher(settings, encoder)]),
              "naturalness": FallbackChain("naturalness", [DnsMos(settings)])}
    return Engines(settings, kokoro, encoder, chains)


@pytest.fixture(autouse=True)
def short_sentences(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(voice_evolved, "SEARCH_SENTENCES", SHORT)


def _reference(kokoro: KokoroSpeech) -> Audio:
    """Three sentences of a voice that is no built-in one, joined as a profile joins clips."""
    gap = np.zeros(int(0.3 * 24000), np.float32)
    pieces: list[np.ndarray] = []
    for text in TARGET_TEXT:
        pieces += [kokoro.synthesize(SpeechRequest(text, voice=TARGET)).audio.samples, gap]
    return Audio(np.concatenate(pieces[:-1]), 24000)


def test_search_comes_nearer_to_a_voice_it_only_hears_through_scores(engines: Engines
                                                                     ) -> None:
    scorer = voice_evolved.EvolveScorer(engines.kokoro, engines.encoder.embed_one,
                                        _reference(engines.kokoro))
    base = engines.kokoro.pack("jf_alpha")
    state = voice_evolve.start(lambda d: scorer.evaluate(base + d), 256, seed=1)
    state, _ = voice_evolve.run(
        state, lambda d: scorer.evaluate(base + d), voice_evolved.style_spread(engines.kokoro),
        budget_s=600, patience=100, max_iterations=10,
        directions=voice_evolved.voice_directions(engines.kokoro, "jf_alpha"))
    assert state.current_fitness > state.start_eval.fitness + 0.01
    assert state.best_eval.held_out > state.start_eval.held_out
    assert state.accepted >= 1


@dataclass
class FakeContext:
    """The JobContext a worker gives a handler, with switches for cancel and waiting."""

    storage: LocalStorage
    engines: Engines
    job_id: str = "job-1"
    cancel_on: str | None = None  # a step that starts with this is cancelled
    waiting: bool = False
    steps: list[tuple[float, str]] = field(default_factory=list)

    @property
    def engine_settings(self) -> EngineSettings:
        return self.engines.settings

    def progress(self, fraction: float, step: str) -> None:
        self.steps.append((fraction, step))
        if self.cancel_on is not None and step.startswith(self.cancel_on):
            raise Cancelled()

    def step_done(self, step: str) -> None:
        pass

    def chain(self, capability: str) -> FallbackChain[Any]:
        return self.engines.chains[capability]

    def observe_stage(self, stage: str, backend: str | None, seconds: float) -> None:
        pass

    def new_key(self, prefix: str, extension: str) -> str:
        return f"{prefix}/x.{extension}"

    def others_waiting(self) -> bool:
        return self.waiting


@pytest.fixture
def profile(engines: Engines, tmp_path: Path) -> tuple[LocalStorage, str]:
    storage = LocalStorage(tmp_path / "store")
    store = ProfileStore(storage)
    reference = _reference(engines.kokoro)
    store.save(Profile.from_dict({"id": "openvoice_00c0ffee", "name": "Target", "language": "ja",
                "matching": {"source_voice": "jf_alpha",
                             "params": {"formant_ratio": 1.0, "pitch_median": 0.0,
                                        "pitch_range": 1.0}}}),
               reference, engines.encoder.embed([reference]))
    return storage, "openvoice_00c0ffee"


def test_job_cancels_makes_way_resumes_and_the_profile_speaks_evolved(
        engines: Engines, profile: tuple[LocalStorage, str]) -> None:
    storage, pid = profile
    store = ProfileStore(storage)
    params = {"profile_id": pid, "budget_s": 600, "seed": 2, "min_run_s": 0}
    checkpoint = ProfileStore.key(pid, voice_evolved.CHECKPOINT_FILE)

    # cancelled at its third step: the checkpoint stays for a rerun
    ctx = FakeContext(storage, engines, cancel_on="search: iteration 3 ")
    with pytest.raises(Cancelled):
        evolve_profile_job(ctx, params)
    assert storage.exists(checkpoint)
    steps = [s for _, s in ctx.steps]
    assert steps[:3] == ["search", "search: measuring quick match",
                         "search: measuring jf_alpha"]
    first_step = next(s for s in steps if s.startswith("search: iteration 1 best "))
    assert "quick match" in first_step
    first = voice_evolved.ProfileFiles(store, pid).load_checkpoint()
    assert first is not None

    # other work waits: it checkpoints and asks the queue to run it later
    ctx = FakeContext(storage, engines, waiting=True)
    with pytest.raises(MakeWay):
        evolve_profile_job(ctx, params)
    paused = store.get(pid).evolution
    assert paused is not None
    assert paused["status"] == "paused"
    resumed_from = paused["iteration"]
    assert resumed_from >= first[2].iteration

    # the rerun resumes (iterations go on counting) and ends within its budget
    budget = paused["seconds"] + 4.0
    ctx = FakeContext(storage, engines)
    result = evolve_profile_job(ctx, {**params, "budget_s": budget})
    record = result["evolution"]
    assert record["iteration"] > resumed_from and record["stopped"] == "budget"
    assert ctx.steps[-1][0] <= 0.99 and all(0 <= f <= 1 for f, _ in ctx.steps)
    saved = store.get(pid)
    assert saved.voice_source == record["voice_source"] == result["voice_source"]
    assert saved.evolution is not None
    assert set(saved.evolution["serves"]) == {"ja", "en"}
    verified = saved.evolution["verified"]  # decided on sentences the search never said
    assert set(verified["evolved"]["parts"]) >= {"held_out_ja", "held_out_en"}
    assert verified["evolved"]["parts"]["held_out_ja"] > verified["quick"]["parts"]["held_out_ja"]
    assert saved.evolution["best"]["held_out"] >= saved.evolution["start"]["held_out"]
    assert not storage.exists(checkpoint)
    # the target is far from jf_alpha (the quick match): Japanese must gain
    assert saved.evolution["serves"]["ja"] == "evolved"
    assert storage.exists(ProfileStore.key(pid, voice_evolved.EVOLVED_FILE))

    choice = VoiceChoice.of(VoiceRef("profile", pid))
    speech, synthesis = synthesize("ありがとうございます。", tts=engines.chains["tts"],
                                   choice=choice, language="ja", profiles=store,
                                   converters=engines.chains["voice_converter"])
    report = synthesis.as_dict()
    assert report["method"] == "evolved_voice" and report["voice_source"] == "evolved"
    assert "not a cloned recording" in report["label"] and speech.audio.duration > 0.5
    quick, quick_report = synthesize(
        "ありがとうございます。", tts=engines.chains["tts"], choice=choice,
        language="ja", profiles=voice_evolved.QuickMatchStore(storage),
        converters=engines.chains["voice_converter"])
    assert quick_report.method != "evolved_voice"
    target = engines.encoder.embed_one(_reference(engines.kokoro))
    from models.voice.resemblyzer import cosine

    assert cosine(engines.encoder.embed_one(speech.audio), target) > \
        cosine(engines.encoder.embed_one(quick.audio), target)
    store.delete(pid)  # the evolved voice goes with its profile
    assert not storage.exists(ProfileStore.key(pid, voice_evolved.EVOLVED_FILE))
