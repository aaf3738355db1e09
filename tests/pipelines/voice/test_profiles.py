"""Clip checks and the profile store (fast: a stand-in encoder; slow ones use the real one)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from app.storage import LocalStorage
from models.base import Audio
from models.chain import FallbackChain
from models.errors import InvalidInput, NotFound
from pipelines.voice.clips import check_clip
from pipelines.voice.create import create_profile
from pipelines.voice.profiles import ProfileStore
from tests.fixtures.voice import RATE, SENTENCES, ojt_speech, wav_bytes


class SpectrumEncoder:
    """A stand-in encoder: the normalised long-term spectrum (cheap and deterministic)."""

    name = "spectrum"

    def available(self) -> tuple[bool, str]:
        return True, "test"

    def close(self) -> None:
        pass

    def embed(self, clips: Sequence[Audio]) -> np.ndarray:
        spectra = [np.abs(np.fft.rfft(c.samples[: RATE * 2], n=510)) for c in clips]
        v = np.mean(spectra, axis=0)[:256]
        return (v / np.linalg.norm(v)).astype(np.float32)


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    return ProfileStore(LocalStorage(tmp_path / "files"))


@pytest.fixture
def encoder() -> FallbackChain:
    return FallbackChain("voice_encoder", [SpectrumEncoder()])


def test_good_clip_passes(clip: bytes) -> None:
    audio, report = check_clip(clip, "a.wav")
    assert report.verdict in ("ok", "warning"), report
    assert audio is not None
    assert audio.sample_rate == 24000
    assert report.speech_seconds > 3


@pytest.mark.parametrize(("make", "code"), [
    (lambda s: s[: RATE * 2], "VOICE_SAMPLE_TOO_SHORT"),
    (lambda s: np.tile(s, 8)[: RATE * 31], "VOICE_SAMPLE_TOO_LONG"),
    (lambda s: np.zeros(RATE * 5, np.float32), "VOICE_SAMPLE_SILENT"),
    (lambda s: np.clip(s * 8, -1, 1), "VOICE_SAMPLE_CLIPPED"),
    (lambda s: np.concatenate([np.zeros(RATE * 4, np.float32), s[: RATE],
                               np.zeros(RATE * 2, np.float32)]), "VOICE_SAMPLE_TOO_SHORT"),
])
def test_bad_clips_get_their_own_code(make: object, code: str) -> None:
    samples = make(ojt_speech(SENTENCES[1]))  # type: ignore[operator]
    audio, report = check_clip(wav_bytes(samples), "bad.wav", 2)
    assert audio is None
    assert report.verdict == "rejected"
    assert report.code == code, report
    assert "bad.wav" in report.message
    assert "bad.wav" in report.message_ja


def test_noisy_clip_rejected_without_and_after_denoising() -> None:
    rng = np.random.default_rng(1)
    speech = ojt_speech(SENTENCES[1])
    noisy = speech * 0.3 + rng.normal(0, 0.25, len(speech)).astype(np.float32)
    _, report = check_clip(wav_bytes(noisy), "cafe.wav")
    assert report.code == "VOICE_SAMPLE_TOO_NOISY"


def test_unreadable_clip_named() -> None:
    _, report = check_clip(b"not audio at all" * 100, "x.mp3")
    assert report.code == "VOICE_SAMPLE_AUDIO_INVALID"
    assert "x.mp3" in report.message


def test_create_list_get_rename_delete(store: ProfileStore, encoder: FallbackChain,
                                       clips: list[tuple[bytes, str]], tmp_path: Path) -> None:
    profile = create_profile(clips, name="  Taro  ", language="ja", store=store, encoder=encoder)
    pid = profile.id
    assert pid.startswith("voice_")  # no engine's name (see test_profile_ids)
    assert len(pid) == len("voice_") + 8
    assert profile.name == "Taro"
    assert profile.sample_stats["count"] == 3
    assert [p.id for p in store.list()] == [pid]
    for name in ("profile.json", "reference.wav", "embedding.npy"):
        assert (tmp_path / "files" / "voices" / "openvoice" / pid / name).is_file()
    assert store.embedding(pid).shape == (256,)
    assert store.reference(pid).duration > 9
    # survives a restart: a new store over the same files
    again = ProfileStore(LocalStorage(tmp_path / "files"))
    assert again.get(pid).name == "Taro"
    assert again.rename(pid, "Hanako").name == "Hanako"
    assert store.get(pid).name == "Hanako"
    store.delete(pid)
    assert store.list() == []
    with pytest.raises(NotFound) as info:
        store.get(pid)
    assert info.value.code == "VOICE_PROFILE_NOT_FOUND"
    with pytest.raises(NotFound):
        store.delete(pid)


def test_half_written_profiles_are_never_listed(store: ProfileStore, tmp_path: Path) -> None:
    root = tmp_path / "files" / "voices" / "openvoice"
    (root / "openvoice_0000abcd").mkdir(parents=True)
    (root / "openvoice_0000abcd" / "reference.wav").write_bytes(b"x")  # no profile.json yet
    (root / "openvoice_1111abcd").mkdir()
    (root / "openvoice_1111abcd" / "profile.json").write_text("{broken")
    (root / "openvoice_1111abcd" / "embedding.npy").write_bytes(b"x")
    (root / "openvoice_2222abcd").mkdir()  # profile.json but the embedding is gone
    (root / "openvoice_2222abcd" / "profile.json").write_text(json.dumps({"id": "openvoice_2222abcd"}))
    assert store.list() == []


def test_profile_ids_cannot_escape(store: ProfileStore) -> None:
    for bad in ("../../etc", "openvoice_zzzzzzzz", "", "openvoice_1234"):
        with pytest.raises(NotFound):
            store.get(bad)


def test_one_bad_clip_names_itself(store: ProfileStore, encoder: FallbackChain,
                                   clips: list[tuple[bytes, str]]) -> None:
    bad = [clips[0], (wav_bytes(np.zeros(RATE * 5, np.float32)), "quiet.wav"), clips[2]]
    with pytest.raises(InvalidInput) as info:
        create_profile(bad, name="x", store=store, encoder=encoder)
    assert info.value.code == "VOICE_SAMPLE_SILENT"
    assert info.value.details["filename"] == "quiet.wav"
    assert info.value.details["clip"] == 1
    assert [c["verdict"] for c in info.value.details["clips"]] == ["ok", "rejected", "ok"]
    assert store.list() == []


@pytest.mark.parametrize(("count", "code"), [(0, "VOICE_SAMPLE_COUNT"), (6, "VOICE_SAMPLE_COUNT")])
def test_clip_count(store: ProfileStore, encoder: FallbackChain, clip: bytes, count: int,
                    code: str) -> None:
    with pytest.raises(InvalidInput) as info:
        create_profile([(clip, "a.wav")] * count, name="x", store=store, encoder=encoder)
    assert info.value.code == code


def test_bad_name_and_language(store: ProfileStore, encoder: FallbackChain, clip: bytes) -> None:
    with pytest.raises(InvalidInput) as info:
        create_profile([(clip, "a.wav")], name="   ", store=store, encoder=encoder)
    assert info.value.code == "VOICE_PROFILE_NAME_INVALID"
    with pytest.raises(InvalidInput) as info:
        create_profile([(clip, "a.wav")], name="x", language="fr", store=store, encoder=encoder)
    assert info.value.code == "VOICE_INVALID_LANGUAGE"
