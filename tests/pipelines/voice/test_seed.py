"""The shipped calibration seed: a fresh cache reads it instead of making the voices speak,
a seed made with other package versions is set aside, and the one in assets/ covers the
warm-up of the default engines as they speak now."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.base import Audio, EngineSettings
from models.chain import FallbackChain
from pipelines.voice.calibration import CalibrationCache, prepare_calibration
from pipelines.voice.seed import MANIFEST, SEED_DIR, Seed, build, default_chains, installed
from tests.conftest import unavailable
from tests.fixtures.voice import CountingVoice, fresh_process


class Matcher:
    """A stand-in speaker encoder: what it was asked to embed, and a vector of its length."""

    encoder_name = "seed-test"

    def __init__(self) -> None:
        self.embedded = 0

    def embed(self, audio: Audio) -> np.ndarray:
        self.embedded += 1
        return np.array([float(len(audio.samples)), 1.0, -2.5], np.float32)


def made_and_seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                    ) -> tuple[CountingVoice, FallbackChain[CountingVoice], Path]:
    """A cache filled by the voices (with a score per item), turned into a seed."""
    fresh_process(monkeypatch)
    voice = CountingVoice()
    tts = FallbackChain("tts", [voice])
    made = tmp_path / "made"
    prepare_calibration(tts, Matcher(), made, languages=["ja"])
    cache = CalibrationCache(made)
    for info in voice.VOICES:
        key = cache.key("openjtalk", info.id, "ja", Matcher.encoder_name)
        cache.score(key, "judge-1", lambda: 3.25)
    seed = tmp_path / "seed"
    assert build(made / "voice_calibration", seed) == len(voice.VOICES)
    fresh_process(monkeypatch)
    return voice, tts, seed


def test_a_fresh_cache_reads_the_seed_and_says_nothing(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    voice, tts, seed = made_and_seeded(tmp_path, monkeypatch)
    said = voice.calls
    made = CalibrationCache(tmp_path / "made")
    monkeypatch.setattr(CalibrationCache, "seed", Seed(seed))
    matcher = Matcher()
    assert prepare_calibration(tts, matcher, tmp_path / "fresh", languages=["ja"]) == said
    assert voice.calls == said and matcher.embedded == 0  # nothing said, nothing embedded
    fresh = CalibrationCache(tmp_path / "fresh")
    for info in voice.VOICES:
        key = fresh.key("openjtalk", info.id, "ja", Matcher.encoder_name)
        audio, vector = fresh.get(key, lambda: pytest.fail("spoke"),
                                  lambda a: pytest.fail("embedded"))
        original, original_vector = made._load_or_make(key, lambda: pytest.fail("spoke"),
                                                       lambda a: pytest.fail("embedded"))
        assert audio.sample_rate == original.sample_rate
        assert np.max(np.abs(audio.samples - original.samples)) < 1e-4  # 16-bit FLAC
        assert np.allclose(vector, original_vector)
        assert fresh.score(key, "judge-1", lambda: pytest.fail("judged")) == 3.25
    assert not list((tmp_path / "fresh").glob("**/*.npz"))  # the seed is read, not copied


def test_a_seed_made_with_other_versions_is_set_aside(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    voice, tts, seed = made_and_seeded(tmp_path, monkeypatch)
    said = voice.calls
    manifest = json.loads((seed / MANIFEST).read_text("utf-8"))
    manifest["versions"]["piper-tts"] = "0.0.1"
    (seed / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    Seed.usable.cache_clear()
    monkeypatch.setattr(CalibrationCache, "seed", Seed(seed))
    prepare_calibration(tts, Matcher(), tmp_path / "fresh", languages=["ja"])
    assert voice.calls == 2 * said  # every voice spoke again


@pytest.mark.slow
def test_the_shipped_seed_covers_the_warm_up_of_the_default_engines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the seed in assets/ and an empty cache, the warm-up of the default engines says
    nothing (a fresh install serves its first profile in seconds), and a Kokoro voice says
    its calibration sentence now as the seed has it (else: rebuild the seed with
    ``python -m pipelines.voice.seed``)."""
    from models.base import SpeechRequest
    from models.speech.local import LocalSpeech
    from pipelines.voice.calibration import CALIBRATION_TEXT
    from pipelines.voice.jobs import warm_up

    if not Seed.usable(SEED_DIR):
        made = json.loads((SEED_DIR / MANIFEST).read_text("utf-8"))["versions"]
        if any(v is None for v in installed().values()):
            unavailable(f"the seed's engines are not all installed: {installed()}")
        pytest.fail(f"the seed was made with {made}, installed: {installed()}; rebuild it")
    monkeypatch.setattr(CalibrationCache, "seed", Seed(SEED_DIR))
    fresh_process(monkeypatch)
    settings = EngineSettings(cache_dir=tmp_path / "cache")
    chain = default_chains(settings.cache_dir)

    spoken: list[str] = []
    speak = LocalSpeech.synthesize

    def counted(self: LocalSpeech, request: SpeechRequest) -> object:
        spoken.append(f"{self.name}:{request.voice}:{request.text[:12]}")
        return speak(self, request)

    monkeypatch.setattr(LocalSpeech, "synthesize", counted)
    assert warm_up(chain, settings.cache_dir) > 20
    assert spoken == []
    assert not list(settings.cache_dir.glob("**/*.npz"))

    kokoro = chain("tts").get("kokoro")
    encoder = chain("voice_encoder").get("resemblyzer")
    key = CalibrationCache.key("kokoro", "jf_alpha", "ja", "resemblyzer")
    item = Seed(SEED_DIR).item(key)
    assert item is not None
    now = kokoro.synthesize(SpeechRequest(CALIBRATION_TEXT["ja"], voice="jf_alpha",
                                          language="ja")).audio
    assert abs(now.duration - item[0].duration) < 0.05
    assert float(np.dot(encoder.embed([now]), item[1])) > 0.99


def test_adding_a_voice_to_a_seed_keeps_what_it_holds(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m pipelines.voice.seed --add``: the new item joins the seed, every file
    already there stays byte for byte, and the manifest counts them all."""
    voice, _, seed = made_and_seeded(tmp_path, monkeypatch)
    before = {f.name: f.read_bytes() for f in seed.glob("*.*") if f.name != MANIFEST}
    added = CalibrationCache(tmp_path / "added")
    key = added.key("openjtalk", "new_voice", "ja", Matcher.encoder_name)
    added.get(key, lambda: Audio(np.full(1600, 0.1, np.float32), 16000), Matcher().embed)
    assert build(tmp_path / "added" / "voice_calibration", seed) == len(voice.VOICES) + 1
    assert all((seed / name).read_bytes() == data for name, data in before.items())
    assert json.loads((seed / MANIFEST).read_text("utf-8"))["items"] == len(voice.VOICES) + 1
    item = Seed(seed).item(key)
    assert item is not None and item[0].sample_rate == 16000
