"""Typed voice values: options with their ranges, stored profiles, the denoise engine."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from app.storage import LocalStorage
from models.base import Audio, Denoiser, EngineSettings, MatchingCalibration
from models.chain import FallbackChain
from models.errors import InvalidInput
from models.registry import CAPABILITIES, DEFAULT_ORDER, build_chain
from pipelines.voice.kit import VoiceKit
from pipelines.voice.options import VoiceOptions, option_range
from pipelines.voice.profiles import Profile, ProfileStore, public_profile


@pytest.mark.parametrize(("name", "value", "low", "high"), [
    ("speed", 3, 0.5, 2.0), ("speed", 0.49, 0.5, 2.0), ("pitch", -13, -12.0, 12.0),
    ("intonation", 2.5, 0.0, 2.0), ("volume", -0.1, 0.0, 2.0), ("pause", 3.5, 0.0, 3.0),
    ("volume", math.inf, 0.0, 2.0),
])
def test_an_option_out_of_range_is_the_studio_error(name: str, value: float, low: float,
                                                     high: float) -> None:
    with pytest.raises(InvalidInput) as bad:
        VoiceOptions.model_validate({name: value})
    assert bad.value.code == "VOICE_INVALID_OPTION"
    assert bad.value.details == {"option": name, "value": value, "min": low, "max": high}
    assert f"{low}〜{high}" in (bad.value.message_ja or "")
    assert option_range(name) == (low, high)


def test_options_in_range_and_of_the_wrong_type() -> None:
    options = VoiceOptions.model_validate({"speed": 2, "pitch": -12, "voice": "ignored"})
    assert (options.speed, options.pitch, options.pause) == (2.0, -12.0, 1.0)
    request = options.request("text", "a1", "en")
    assert (request.speed, request.pitch, request.voice, request.language) == \
        (2.0, -12.0, "a1", "en")
    with pytest.raises(ValidationError):  # not a number: a malformed field, as before
        VoiceOptions.model_validate({"speed": "fast"})


def _store(tmp_path: Path) -> ProfileStore:
    return ProfileStore(LocalStorage(tmp_path))


def test_a_profile_written_by_an_older_version_reads_and_keeps_its_fields(tmp_path: Path
                                                                          ) -> None:
    stored = {"id": "openvoice_0000beef", "name": "Old", "language": "ja",
              "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
              "engine": "openvoice", "encoder": "resemblyzer", "embedding_dim": 2,
              "denoised": True, "sample_stats": {"count": 1}, "future_field": [1, 2],
              "matching": {"method": "voice matching", "source_voice": "jf_alpha",
                           "params": {"formant_ratio": 0.92, "pitch_median": 180.0,
                                      "pitch_range": 1.0},
                           "similarity": {"source": 0.5}}}
    store = _store(tmp_path)
    storage = store.storage
    storage.put(store.key(stored["id"], "embedding.npy"), b"")
    storage.put(store.key(stored["id"], "profile.json"), json.dumps(stored).encode())
    profile = store.get("openvoice_0000beef")
    assert profile.matching == MatchingCalibration(
        "voice matching", "jf_alpha",
        {"formant_ratio": 0.92, "pitch_median": 180.0, "pitch_range": 1.0}, {"source": 0.5})
    # which voice serves is always said (an old profile: the quick match)
    assert profile.owner is None and profile.as_dict() == {**stored, "voice_source": "matched"}
    renamed = store.rename(profile.id, "New")
    again = json.loads(storage.get(store.key(profile.id, "profile.json")))
    assert again["future_field"] == [1, 2] and again["name"] == "New" == renamed.name
    assert public_profile(renamed)["profile_id"] == profile.id


def test_a_profile_without_calibration_stores_null(tmp_path: Path) -> None:
    profile = Profile("openvoice_00000001", "N", "en", "t", "t", owner="alice")
    store = _store(tmp_path)
    store.save(profile, Audio(np.zeros(2400, np.float32), 24000), np.ones(4, np.float32))
    data = json.loads(store.storage.get(store.key(profile.id, "profile.json")))
    assert data["matching"] is None and data["owner"] == "alice"
    assert store.get(profile.id) == profile
    assert [p.id for p in store.list()] == [profile.id]


def test_the_denoiser_is_a_registry_engine(tmp_path: Path) -> None:
    assert DEFAULT_ORDER["denoise"] == ("deepfilternet",)
    chain = build_chain("denoise", ["deepfilternet"], EngineSettings())
    engine = chain.get("deepfilternet")
    assert isinstance(engine, Denoiser)
    kit = VoiceKit(tts=FallbackChain("tts", []), encoder=FallbackChain("voice_encoder", []),
                   converters=FallbackChain("voice_converter", []), store=_store(tmp_path),
                   denoisers=chain)
    assert (kit.denoiser() is engine) == engine.available()[0]
    assert VoiceKit(kit.tts, kit.encoder, kit.converters, kit.store).denoiser() is None
    assert "deepfilternet" in CAPABILITIES["denoise"]


def test_settings_check_the_denoise_backends(settings: object) -> None:
    from app.config import Settings

    assert settings.backends("denoise") == ["deepfilternet"]  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="STUDIO_DENOISE_BACKENDS"):
        Settings(denoise_backends="rnnoise")  # type: ignore[call-arg]


def test_health_lists_the_denoiser(voice_client: object) -> None:
    engines = voice_client.get("/health").json()["data"]["engines"]  # type: ignore[attr-defined]
    assert [row["name"] for row in engines["denoise"]] == ["deepfilternet"]
