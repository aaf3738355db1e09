"""REST: /api/prosody/adjust and /api/bgm/* through the real app, with hostile uploads."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import soundfile as sf

from models.base import Audio
from pipelines.media import decode_audio
from pipelines.sound.loudness import integrated_loudness, true_peak_db
from tests.fixtures.sound import wav_bytes


def _wav(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _with_rate(data: bytes, rate: int) -> bytes:
    patched = bytearray(data)
    patched[24:28] = struct.pack("<I", rate)
    patched[28:32] = struct.pack("<I", (rate * 2) % 2**32)
    return bytes(patched)


_GOOD = _wav(np.full(24000, 0.1, dtype=np.float32), 24000)
HOSTILE = {
    "empty": b"",
    "zero_samples": _wav(np.zeros(0, dtype=np.float32), 24000),
    "nan": _wav(np.array([0.1, np.nan] * 500, dtype=np.float32), 24000, "FLOAT"),
    "inf": _wav(np.array([0.1, -np.inf] * 500, dtype=np.float32), 24000, "FLOAT"),
    "rate_1hz": _with_rate(_GOOD, 1),
    "rate_2ghz": _with_rate(_GOOD, 2_000_000_000),
    "truncated": _GOOD[:1000],
    "header_only": _GOOD[:44],
    "header_claims_less": _GOOD[:40] + struct.pack("<I", 100) + _GOOD[44:],
    "garbage_floats": _wav(np.array([3e30, 0.1] * 500, dtype=np.float32), 24000, "FLOAT"),
    "not_audio": b"<html>hello</html>" * 50,
    "png": b"\x89PNG\r\n\x1a\n" + b"\0" * 500,
}


def _post_adjust(client, audio: bytes, params: dict | str | None = None, **fields):
    data = {k: str(v) for k, v in fields.items()}
    if params is not None:
        data["params"] = params if isinstance(params, str) else json.dumps(params)
    return client.post("/api/prosody/adjust", files={"audio": ("voice.wav", audio, "audio/wav")},
                       data=data)


def _fetch(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200
    return response.content


def test_post_prosody_adjust_200(client, speech_wav: bytes, speech: Audio) -> None:
    response = _post_adjust(client, speech_wav, {"pitch_shift": 2, "time_stretch": 1.1,
                                                 "energy_boost": 1.2})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["original_duration"] == pytest.approx(speech.duration, abs=0.01)
    assert data["duration"] == pytest.approx(speech.duration / 1.1, rel=0.01)
    assert set(data["changes_applied"]) - {"limiter"} == {"pitch", "speed", "energy"}
    assert "+2.00 semitones" in data["changes_applied"]["pitch"]
    assert data["output_url"].startswith("/files/prosody/")
    assert data["method"]["pitch_tempo"].startswith("Rubber Band")
    out = decode_audio(_fetch(client, data["output_url"]), target_rate=None)
    assert out.duration == pytest.approx(data["duration"], abs=0.01)


def test_post_prosody_adjust_emotion_and_form_fields(client, speech_wav: bytes) -> None:
    response = _post_adjust(client, speech_wav, {"emotion": "auto",
                                                 "text": "お誕生日おめでとう！"},
                            time_stretch="1.0", output_format="mp3")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["emotion"] == "celebration"
    assert data["parameters"]["time_stretch"] == 1.0  # the form field overrides the preset
    assert "speed" not in data["changes_applied"]
    assert data["output_url"].endswith(".mp3")


def test_post_prosody_adjust_from_a_stored_key(client, services, speech_wav: bytes) -> None:
    services.storage.put("voices/kokoro/abc.wav", speech_wav)
    response = client.post("/api/prosody/adjust",
                           data={"audio_key": "voices/kokoro/abc.wav", "params": "{}"})
    assert response.status_code == 200, response.text
    bad = client.post("/api/prosody/adjust", data={"audio_key": "../etc/passwd"})
    assert bad.json()["error"]["code"] == "PROSODY_AUDIO_INVALID"


@pytest.mark.parametrize(("params", "field"), [
    ({"pitch_shift": 20}, "pitch_shift"), ({"time_stretch": 0.1}, "time_stretch"),
    ({"energy_boost": 3}, "energy_boost"), ({"emotion": "furious"}, "emotion"),
    ("{not json", "params"), ("[1, 2]", "params"),
])
def test_post_prosody_adjust_400_invalid_params(client, params, field) -> None:
    response = _post_adjust(client, _GOOD, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "PROSODY_INVALID_PARAMS"
    assert error["details"]["field"] == field
    if field == "pitch_shift":
        assert error["details"]["allowed"] == {"min": -12.0, "max": 12.0}
        assert "-12" in error["message"]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_post_prosody_adjust_400_hostile_audio(client, name: str) -> None:
    response = _post_adjust(client, HOSTILE[name], {"pitch_shift": 1})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "PROSODY_AUDIO_INVALID"
    assert error["details"]["reason"]


def test_post_prosody_adjust_413_too_long_and_too_big(client) -> None:
    long_wav = _wav(np.zeros(4000 * 301, dtype=np.float32), 4000)  # 5 min 1 s, 2.4 MB
    response = _post_adjust(client, long_wav)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PROSODY_AUDIO_TOO_LONG"
    huge = b"RIFF" + b"\0" * (50 * 1024 * 1024)
    response = _post_adjust(client, huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PROSODY_AUDIO_TOO_LARGE"


def test_post_prosody_adjust_400_without_audio(client) -> None:
    response = client.post("/api/prosody/adjust", data={"params": "{}"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "PROSODY_AUDIO_INVALID"


def test_get_prosody_presets_200(client) -> None:
    data = client.get("/api/prosody/presets").json()["data"]
    assert {p["emotion"] for p in data["presets"]} >= {"neutral", "happy", "celebration",
                                                         "excited", "calm", "sad"}
    assert data["ranges"]["time_stretch"] == {"min": 0.5, "max": 2.0}


def test_get_bgm_tracks_200(client) -> None:
    response = client.get("/api/bgm/tracks")
    assert response.status_code == 200
    tracks = response.json()["data"]["tracks"]
    assert len(tracks) >= 5
    assert {t["mood"] for t in tracks} >= {"calm", "happy", "celebration", "energetic", "tender"}
    for track in tracks:
        assert set(track) >= {"id", "title", "mood", "duration", "licence", "preview_url"}
    preview = client.get(tracks[0]["preview_url"])
    assert preview.status_code == 200
    assert preview.headers["content-type"] == "audio/ogg"
    assert decode_audio(preview.content).duration == pytest.approx(tracks[0]["duration"],
                                                                   abs=0.1)
    missing = client.get("/api/bgm/tracks/nope/audio")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "BGM_TRACK_NOT_FOUND"


def test_post_bgm_mix_200(client, speech_wav: bytes, speech: Audio) -> None:
    response = client.post("/api/bgm/mix", files={"voice_audio": ("v.wav", speech_wav)},
                           data={"bgm_type": "celebration", "bgm_volume": "0.3",
                                 "fade_in": "1.5", "fade_out": "2", "lead_in": "1",
                                 "tail": "2"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["format"] == "mp3"
    assert data["bitrate"] == "192k"
    assert data["duration"] == pytest.approx(speech.duration + 3.0, abs=0.01)
    details = data["mixing_details"]
    assert details["track"]["mood"] == "celebration"
    assert details["ducking"]["enabled"] is True
    assert details["voice_to_music_db"] >= 10
    mixed = decode_audio(_fetch(client, data["output_url"]), target_rate=None)
    assert integrated_loudness(mixed) == pytest.approx(-16.0, abs=0.5)
    assert true_peak_db(mixed.samples) <= -1.0


def test_post_bgm_mix_with_params_json_and_wav_output(client, speech_wav: bytes) -> None:
    response = client.post("/api/bgm/mix", files={"voice_audio": ("v.wav", speech_wav)},
                           data={"bgm_type": "calm-acoustic",
                                 "params": json.dumps({"ducking": False, "output_format": "wav",
                                                       "bgm_volume_db": -20})})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["format"] == "wav"
    assert data["bitrate"] is None
    assert data["mixing_details"]["ducking"]["enabled"] is False


def test_post_bgm_mix_404_unknown_track(client, speech_wav: bytes) -> None:
    response = client.post("/api/bgm/mix", files={"voice_audio": ("v.wav", speech_wav)},
                           data={"bgm_type": "polka"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "BGM_TRACK_NOT_FOUND"


@pytest.mark.parametrize(("field", "value"), [("bgm_volume", "2"), ("fade_in", "-1"),
                                              ("lead_in", "9"), ("output_format", "aiff")])
def test_post_bgm_mix_400_invalid_params(client, field: str, value: str) -> None:
    response = client.post("/api/bgm/mix", files={"voice_audio": ("v.wav", _GOOD)},
                           data={field: value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BGM_INVALID_PARAMS"
    assert error["details"]["field"] == field
    assert "allowed" in error["details"]


@pytest.mark.parametrize("name", ["nan", "truncated", "header_claims_less", "not_audio",
                                  "rate_1hz"])
def test_post_bgm_mix_400_hostile_voice(client, name: str) -> None:
    response = client.post("/api/bgm/mix", files={"voice_audio": ("v.wav", HOSTILE[name])})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BGM_AUDIO_INVALID"


def test_post_bgm_tracks_201_then_mix_with_it(client, speech_wav: bytes) -> None:
    rng = np.random.default_rng(1)
    music = wav_bytes(Audio((rng.standard_normal(44100 * 4) * 0.1).astype(np.float32), 44100))
    response = client.post("/api/bgm/tracks", files={"file": ("mine.wav", music)},
                           data={"title": "Mine", "mood": "happy"})
    assert response.status_code == 201, response.text
    track = response.json()["data"]["track"]
    assert track["title"] == "Mine"
    assert track["duration"] == pytest.approx(4.0, abs=0.01)
    listed = client.get("/api/bgm/tracks").json()["data"]["tracks"]
    assert track["id"] in [t["id"] for t in listed]
    assert client.get(track["preview_url"]).status_code == 200
    mixed = client.post("/api/bgm/mix", files={"voice_audio": ("v.wav", speech_wav)},
                        data={"bgm_type": track["id"]})
    assert mixed.status_code == 200, mixed.text
    assert mixed.json()["data"]["mixing_details"]["track"]["id"] == track["id"]


@pytest.mark.parametrize(("filename", "data", "status", "code"), [
    ("x.exe", b"MZ" * 100, 400, "BGM_AUDIO_INVALID"),
    ("x.wav", HOSTILE["nan"], 400, "BGM_AUDIO_INVALID"),
    ("x.mp3", b"\xff\xfb" + b"\0" * 300, 400, "BGM_AUDIO_INVALID"),
    ("x.flac", b"RIFF" + b"\0" * (10 * 1024 * 1024), 413, "BGM_AUDIO_TOO_LARGE"),
])
def test_post_bgm_tracks_rejects_bad_uploads(client, filename, data, status, code) -> None:
    response = client.post("/api/bgm/tracks", files={"file": (filename, data)})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
