"""pipelines/sound/music.py: catalogue, looping, ducking, fades, loudness of the encoded result."""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess

import numpy as np
import pytest

from models.base import Audio
from models.errors import InvalidInput, NotFound, PayloadTooLarge
from pipelines.media import decode_audio, ffmpeg_exe
from pipelines.sound import music as bgm
from pipelines.sound import tracks as bgm_catalog
from pipelines.sound.loudness import integrated_loudness, true_peak_db
from tests.fixtures.sound import wav_bytes


def _noise(seconds: float, rate: int = 48000, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio((rng.standard_normal(int(seconds * rate)) * 0.1).astype(np.float32), rate)


def _level_db(x: np.ndarray) -> float:
    return 10 * math.log10(float(np.mean(x.astype(np.float64) ** 2)) + 1e-20)


def ffmpeg_ebur128(data: bytes, suffix: str) -> tuple[float, float]:
    """(integrated LUFS, true peak dBFS) by ffmpeg's own ebur128 filter: an independent meter."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-f", suffix, "-i",
                           "pipe:0", "-af", "ebur128=peak=true", "-f", "null", "-"],
                          input=data, capture_output=True, text=False, check=True, timeout=120)
    text = proc.stderr.decode(errors="replace")
    summary = text[text.rindex("Summary:"):]
    lufs = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    return lufs, peak


def test_catalogue_has_five_moods_with_provenance() -> None:
    tracks = bgm_catalog.builtin_tracks()
    assert len(tracks) >= 5
    assert {t.mood for t in tracks} >= set(bgm_catalog.MOODS)
    manifest = json.loads((bgm_catalog.ASSETS_DIR / "manifest.json").read_text())
    total = 0
    for entry in manifest["tracks"]:
        path = bgm_catalog.ASSETS_DIR / entry["file"]
        data = path.read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert "MIT" in entry["licence"]
        assert "immich-memories-music" in entry["source"]
        assert entry["title"]
        assert entry["mood"] in bgm_catalog.MOODS
    assert total < 4.5e6
    assert (bgm_catalog.ASSETS_DIR / "LICENSE-MUSIC").is_file()


def test_builtin_tracks_decode_to_their_manifest_duration() -> None:
    for track in bgm_catalog.builtin_tracks():
        _, audio = bgm_catalog.load_track(track.id)
        assert audio.sample_rate == bgm.MIX_RATE
        assert audio.duration == pytest.approx(track.duration, abs=0.1)
        assert np.abs(audio.samples).max() > 0.1


def test_find_track_by_id_and_mood() -> None:
    assert bgm_catalog.find_track("calm-acoustic").id == "calm-acoustic"
    assert bgm_catalog.find_track("celebration").mood == "celebration"
    assert bgm_catalog.find_track("Tender").mood == "tender"
    with pytest.raises(NotFound) as caught:
        bgm_catalog.find_track("polka")
    assert caught.value.code == "BGM_TRACK_NOT_FOUND"


def test_loop_is_seamless_for_any_length() -> None:
    music = _noise(4.0)
    looped, plays = bgm.loop_to_length(music, 48000 * 15, crossfade=1.0)
    assert looped.size == 48000 * 15
    assert plays >= 4
    # equal-power seams: the level over every 250 ms window stays within 1.5 dB
    windows = looped[: looped.size // 12000 * 12000].reshape(-1, 12000)
    levels = [_level_db(w) for w in windows]
    assert max(levels) - min(levels) < 1.5
    short, plays = bgm.loop_to_length(music, 48000, crossfade=1.0)
    assert short.size == 48000
    assert plays == 1


def test_mix_layout_loudness_and_ducking(speech: Audio) -> None:
    music = _noise(30.0)
    options = bgm.MixOptions(lead_in=2.0, tail=3.0, fade_in=1.0, fade_out=1.0, duck_db=12.0)
    mixed, report = bgm.mix(speech, music, options)
    details = report.details
    assert mixed.duration == pytest.approx(2.0 + speech.duration + 3.0, abs=0.01)
    assert integrated_loudness(mixed) == pytest.approx(-16.0, abs=0.3)
    assert true_peak_db(mixed.samples) <= -1.0
    assert details["voice_to_music_db"] >= 10.0
    # the music dips while someone speaks and is back up in the lead-in and the tail
    gain, speech_frames = report.music_gain_db, report.speech
    assert np.median(gain[speech_frames]) == pytest.approx(-12.0, abs=1.0)
    lead = report.frame_times < 1.5
    assert np.all(gain[lead] > -1.0)
    tail = report.frame_times > details["duration"] - 1.5
    assert np.all(gain[tail] > -1.0)
    # nothing speaks before the lead-in ends
    assert not speech_frames[report.frame_times < 1.9].any()


def test_ducking_attack_and_release_shape_the_dip(speech: Audio) -> None:
    fast = bgm.mix(speech, _noise(20.0), bgm.MixOptions(attack_ms=20, release_ms=100))[1]
    slow = bgm.mix(speech, _noise(20.0), bgm.MixOptions(attack_ms=20, release_ms=2000))[1]
    end = fast.details["voice_offset"] + fast.details["voice_duration"]
    after = (fast.frame_times > end + 0.2) & (fast.frame_times < end + 0.6)
    assert np.mean(fast.music_gain_db[after]) > np.mean(slow.music_gain_db[after]) + 3.0
    off = bgm.mix(speech, _noise(20.0), bgm.MixOptions(ducking=False))[1]
    assert np.all(off.music_gain_db == 0.0)
    assert off.details["voice_to_music_db"] < fast.details["voice_to_music_db"] - 5


def test_fades_and_volume(speech: Audio) -> None:
    options = bgm.MixOptions(lead_in=4.0, fade_in=3.0, bgm_volume=0.5)
    mixed, _ = bgm.mix(speech, _noise(20.0), options)
    start = mixed.samples[: int(0.2 * 48000)]
    plateau = mixed.samples[int(3.2 * 48000): int(3.8 * 48000)]
    assert _level_db(plateau) - _level_db(start) > 10
    mute, report = bgm.mix(speech, _noise(20.0), bgm.MixOptions(bgm_volume=0.0, lead_in=1.0))
    assert np.abs(mute.samples[: int(0.9 * 48000)]).max() == 0.0
    assert report.details["bgm_volume_db"] is None
    quiet = bgm.mix(speech, _noise(20.0), bgm.MixOptions(bgm_volume_db=-30, ducking=False))[1]
    loud = bgm.mix(speech, _noise(20.0), bgm.MixOptions(bgm_volume_db=-6, ducking=False))[1]
    assert quiet.details["voice_to_music_db"] == pytest.approx(
        loud.details["voice_to_music_db"] + 24, abs=2.0)


@pytest.mark.parametrize("fmt", ["mp3", "wav", "m4a"])
def test_encoded_mix_meets_loudness_by_an_independent_meter(speech: Audio, fmt: str) -> None:
    data, report, track = bgm.mix_to_file(speech, "celebration",
                                          bgm.MixOptions(output_format=fmt))
    assert track is not None
    assert track.mood == "celebration"
    lufs, peak = ffmpeg_ebur128(data, {"mp3": "mp3", "wav": "wav", "m4a": "mov"}[fmt])
    assert lufs == pytest.approx(-16.0, abs=0.5)
    assert peak <= -1.0
    assert report.details["output"]["format"] == fmt
    if fmt == "mp3":
        assert report.details["output"]["bitrate"] == "192k"
        assert data[:3] == b"ID3" or data[0] == 0xFF


@pytest.mark.slow
def test_a_minute_of_voice_loops_the_track(speech: Audio) -> None:
    long_voice = Audio(np.tile(speech.samples, 9), speech.sample_rate)
    data, report, _ = bgm.mix_to_file(long_voice, "calm", bgm.MixOptions(output_format="wav"))
    assert report.details["loop"]["plays"] >= 2
    decoded = decode_audio(data, target_rate=None)
    assert decoded.duration == pytest.approx(long_voice.duration + 3.0, abs=0.05)
    assert integrated_loudness(decoded) == pytest.approx(-16.0, abs=0.5)


def test_silent_voice_still_mixes() -> None:
    silent = Audio(np.zeros(48000, dtype=np.float32), 48000)
    mixed, report = bgm.mix(silent, _noise(10.0))
    assert np.all(np.isfinite(mixed.samples))
    assert integrated_loudness(mixed) == pytest.approx(-16.0, abs=0.5)
    assert report.details["voice_to_music_db"] is None


@pytest.mark.parametrize(("raw", "field"), [
    ({"bgm_volume": 1.5}, "bgm_volume"), ({"bgm_volume": "-0.1"}, "bgm_volume"),
    ({"fade_in": 11}, "fade_in"), ({"lead_in": 6}, "lead_in"), ({"tail": -1}, "tail"),
    ({"attack_ms": 0}, "attack_ms"), ({"duck_db": "deep"}, "duck_db"),
    ({"ducking": "maybe"}, "ducking"), ({"output_format": "ogg"}, "output_format"),
    ({"bitrate": "1000k"}, "bitrate"), ({"fade_out": "nan"}, "fade_out"),
])
def test_bad_mix_options_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        bgm.MixOptions.from_mapping(raw)
    assert caught.value.code == "BGM_INVALID_PARAMS"
    assert caught.value.details["field"] == field
    assert "allowed" in caught.value.details


def test_mix_options_parse_form_strings() -> None:
    options = bgm.MixOptions.from_mapping({"bgm_volume": "0.2", "ducking": "false",
                                           "bitrate": "128", "output_format": "WAV",
                                           "fade_in": ""})
    assert options.bgm_volume == 0.2
    assert options.ducking is False
    assert options.bitrate == "128k"
    assert options.output_format == "wav"
    assert options.fade_in == bgm.MixOptions().fade_in


class MemoryStore:
    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> str:
        self.items[key] = data
        return key

    def get(self, key: str) -> bytes:
        if key not in self.items:
            raise NotFound(key)
        return self.items[key]

    def exists(self, key: str) -> bool:
        return key in self.items

    def list(self, prefix: str = ""):
        return iter(sorted(k for k in self.items if k.startswith(prefix)))


def test_upload_is_validated_stored_and_listed() -> None:
    store = MemoryStore()
    music = wav_bytes(_noise(3.0, rate=44100))
    track = bgm_catalog.save_upload(music, "my song.wav", store, title="My song", mood="happy")
    assert track.id.startswith("user-")
    assert track.mood == "happy"
    assert [t.id for t in bgm_catalog.list_tracks(store)][-1] == track.id
    found, audio = bgm_catalog.load_track(track.id, store)
    assert found.title == "My song"
    assert audio.duration == pytest.approx(3.0, abs=0.01)
    with pytest.raises(InvalidInput) as bad_ext:
        bgm_catalog.save_upload(music, "song.exe", store)
    assert bad_ext.value.code == "BGM_AUDIO_INVALID"
    with pytest.raises(PayloadTooLarge) as big:
        bgm_catalog.save_upload(b"RIFF" + b"\0" * (10 * 1024 * 1024), "big.wav", store)
    assert big.value.code == "BGM_AUDIO_TOO_LARGE"
    with pytest.raises(InvalidInput) as short:
        bgm_catalog.save_upload(wav_bytes(_noise(0.5)), "short.wav", store)
    assert short.value.details["reason"] == "too_short"
    with pytest.raises(InvalidInput) as broken:
        bgm_catalog.save_upload(music[:200], "broken.wav", store)
    assert broken.value.code == "BGM_AUDIO_INVALID"
    with pytest.raises(InvalidInput) as mood:
        bgm_catalog.save_upload(music, "x.wav", store, mood="angry")
    assert mood.value.details["field"] == "mood"
    assert len(bgm_catalog.uploaded_tracks(store)) == 1
