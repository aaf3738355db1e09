"""The production VOICEVOX client against the loopback stub engine (real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from models.base import EngineSettings, SpeechRequest
from models.errors import BackendFailed, InvalidInput, TransientBackendError
from models.speech.voicevox import VoicevoxSpeech, semitones_to_pitch_scale
from tests.stubs.voicevox import VoicevoxStub


@pytest.fixture
def stub() -> Iterator[VoicevoxStub]:
    with VoicevoxStub() as server:
        yield server


def engine_for(url: str, **kw: object) -> VoicevoxSpeech:
    settings = EngineSettings(voicevox_url=url, request_timeout=kw.pop("timeout", 5.0))  # type: ignore[arg-type]
    return VoicevoxSpeech(settings, backoff=0.01, max_backoff=0.05, **kw)  # type: ignore[arg-type]


def test_available_and_voices(stub: VoicevoxStub) -> None:
    engine = engine_for(stub.url)
    ok, why = engine.available()
    assert ok, why
    assert "0.14.0-stub" in why
    ids = [v.id for v in engine.voices()]
    assert ids == ["voicevox:2", "voicevox:3", "voicevox:8"]


def test_unconfigured_and_unreachable_are_unavailable() -> None:
    assert engine_for("").available()[0] is False
    from tests.conftest import free_port

    ok, why = engine_for(f"http://127.0.0.1:{free_port()}").available()
    assert not ok
    assert "unreachable" in why


def test_synthesis_maps_options_to_audio_query(stub: VoicevoxStub) -> None:
    engine = engine_for(stub.url)
    slow = engine.synthesize(SpeechRequest("あいうえお。かきくけこ。", voice="voicevox:3",
                                           speed=0.5, pitch=12, intonation=0.0, volume=2.0,
                                           pause=1.5))
    query = stub.queries[-1]
    assert query["speedScale"] == 0.5
    assert query["pitchScale"] == pytest.approx(semitones_to_pitch_scale(12))
    assert 0.15 < query["pitchScale"] < 0.2
    assert query["intonationScale"] == 0.0
    assert query["volumeScale"] == 2.0
    assert query["pauseLengthScale"] == 1.5
    assert query["outputSamplingRate"] == 24000
    assert all(p["speaker"] == ["3"] for m, path, p in stub.requests if path == "/synthesis")
    assert slow.audio.sample_rate == 24000
    assert len(slow.sentences) == 2
    fast = engine.synthesize(SpeechRequest("あいうえお。かきくけこ。", voice="voicevox:3", speed=2.0))
    # 4x the speed -> far shorter audio (pauses between sentences are scaled separately)
    assert slow.audio.duration > 2.5 * fast.audio.duration
    assert np.abs(slow.audio.samples).max() <= 1.0


def test_retries_5xx_and_connection_errors(stub: VoicevoxStub) -> None:
    engine = engine_for(stub.url, attempts=4)
    stub.fail_next = [503, 502]
    speech = engine.synthesize(SpeechRequest("こんにちは", voice="voicevox:2"))
    assert speech.audio.duration > 0.3
    statuses = [path for _, path, _ in stub.requests]
    assert statuses.count("/audio_query") == 3  # two failures, then success


def test_gives_up_with_transient_error_and_retry_after(stub: VoicevoxStub) -> None:
    engine = engine_for(stub.url, attempts=3)
    stub.fail_next = [503] * 10
    with pytest.raises(TransientBackendError) as info:
        engine.synthesize(SpeechRequest("こんにちは", voice="voicevox:2"))
    assert info.value.code == "VOICE_SERVICE_UNAVAILABLE"
    assert info.value.retry_after
    assert [p for _, p, _ in stub.requests].count("/audio_query") == 3


def test_connection_refused_is_transient() -> None:
    from tests.conftest import free_port

    engine = engine_for(f"http://127.0.0.1:{free_port()}", attempts=2)
    with pytest.raises(TransientBackendError):
        engine.synthesize(SpeechRequest("こんにちは", voice="voicevox:2"))


def test_timeout_is_transient(stub: VoicevoxStub) -> None:
    stub.delay = 1.0
    engine = engine_for(stub.url, attempts=2, timeout=0.2)
    with pytest.raises(TransientBackendError):
        engine.synthesize(SpeechRequest("こんにちは", voice="voicevox:2"))


@pytest.mark.parametrize("old_engine", [False, True])
def test_stale_default_style_refreshes_speakers(old_engine: bool) -> None:
    with VoicevoxStub(old_engine=old_engine) as stub:
        stub.drop_styles = {2}  # style 2 disappears after the first /speakers
        engine = engine_for(stub.url)
        engine.speakers()  # cache holds style 2
        speech = engine.synthesize(SpeechRequest("こんにちは"))
        assert speech.audio.duration > 0.3
        paths = [p for _, p, _ in stub.requests]
        assert paths.count("/speakers") == 2
        assert stub.requests[-1][2]["speaker"] == ["3"]


def test_unknown_asked_style_is_invalid_input(stub: VoicevoxStub) -> None:
    engine = engine_for(stub.url)
    with pytest.raises(InvalidInput) as info:
        engine.synthesize(SpeechRequest("こんにちは", voice="voicevox:999"))
    assert info.value.code == "VOICE_UNKNOWN_VOICE"


def test_422_on_known_style_is_a_failure_not_a_retry_loop(stub: VoicevoxStub) -> None:
    engine = engine_for(stub.url)
    stub.fail_next = [422]
    with pytest.raises(BackendFailed):
        engine.synthesize(SpeechRequest("こんにちは", voice="voicevox:2"))


def test_mock_transport_unit() -> None:
    """The client takes an httpx.Client, so a MockTransport can drive it without sockets."""
    import httpx

    from tests.stubs.voicevox import _query, render

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/audio_query":
            return httpx.Response(200, json=_query(request.url.params["text"]))
        if request.url.path == "/synthesis":
            import json

            return httpx.Response(200, content=render(json.loads(request.content)))
        return httpx.Response(200, json=[{"name": "x", "styles": [{"id": 1, "name": "n"}]}])

    client = httpx.Client(base_url="http://vv", transport=httpx.MockTransport(handler))
    engine = VoicevoxSpeech(EngineSettings(voicevox_url="http://vv"), client=client)
    speech = engine.synthesize(SpeechRequest("テスト", volume=0.5))
    query = _query("テスト")
    query["volumeScale"] = 0.5
    core = _stub_voice(query)  # the engine's answer is what comes back, at half volume
    assert _found(speech.audio.samples, core) > 0.98
    assert abs(speech.audio.duration - len(core) / 24000) < 0.2
    assert np.abs(speech.audio.samples).max() == pytest.approx(
        np.abs(core).max(), rel=0.05)


def _stub_voice(query: dict) -> np.ndarray:
    """What the stub engine answered for ``query``, its silence either side cut (the core
    of the buzzy vowels, 20 ms in from each end)."""
    import io

    import soundfile as sf

    from tests.stubs.voicevox import render

    samples, _ = sf.read(io.BytesIO(render(query)), dtype="float32")
    loud = np.nonzero(np.abs(samples) > 1e-3)[0]
    cut = int(0.02 * 24000)
    return samples[loud[0] + cut: loud[-1] - cut]


def _found(segment: np.ndarray, core: np.ndarray) -> float:
    """How well ``core`` is found, unchanged, inside ``segment``: the best normalised
    correlation over every offset (1.0: exactly there; 0 if it cannot fit)."""
    if len(core) > len(segment):
        return 0.0
    dots = np.correlate(segment, core, "valid")
    windows = np.sqrt(np.convolve(segment ** 2, np.ones(len(core)), "valid"))
    return float(np.max(dots / (windows * np.linalg.norm(core) + 1e-12)))


def test_the_engines_audio_for_each_sentence_comes_back_in_order(stub: VoicevoxStub) -> None:
    """Not only some audio: each sentence's span of the result is what the engine answered
    to that sentence's audio query (its moras at their pitches), in the order written."""
    engine = engine_for(stub.url)
    speech = engine.synthesize(SpeechRequest("あいう。かきくけこさしす。", voice="voicevox:2"))
    queries = stub.queries[-2:]
    assert [q["kana"] for q in queries] == ["あいう。", "かきくけこさしす。"]
    assert [len(p["moras"]) for q in queries for p in q["accent_phrases"]] == [3, 8]
    rate = speech.audio.sample_rate
    cores = [_stub_voice(q) for q in queries]
    segments = [speech.audio.samples[int(s.start * rate): int(s.end * rate)]
                for s in speech.sentences]
    assert [s.text for s in speech.sentences] == ["あいう。", "かきくけこさしす。"]
    for k, (segment, core) in enumerate(zip(segments, cores, strict=True)):
        assert _found(segment, core) > 0.98, k  # this sentence's audio, as the engine made it
        assert abs(len(segment) - len(core)) / rate < 0.1, k  # and nothing else
        assert _found(segment[::-1].copy(), core) < 0.5, k  # (backwards would not pass)
    # the two sentences are in the order written (the first is the shorter one)
    assert len(segments[0]) < len(segments[1])
    assert _found(segments[0], cores[1]) == 0.0


def test_mora_timing_follows_the_audio(stub: VoicevoxStub) -> None:
    """Lip-sync reads the AudioQuery's mora lengths: each consonant and vowel lies where the
    engine said it (speed, pauses between phrases and sentences, the joins' trims included)."""
    engine = engine_for(stub.url)
    said = engine.synthesize(SpeechRequest("かきくけこ、さしすせそ。たちつてと。",
                                           voice="voicevox:3", speed=1.25, pause=1.2))
    rate = said.audio.sample_rate
    x = said.audio.samples
    assert len(said.phonemes) == 30  # 15 morae, each a consonant and a vowel
    assert [p.text for p in said.phonemes[::2]] == ["k"] * 15
    assert all(b.start >= a.end - 1e-3 for a, b in zip(said.phonemes, said.phonemes[1:], strict=False))
    for ph in said.phonemes:  # each one's middle is sound
        mid = int((ph.start + ph.end) / 2 * rate)
        assert np.abs(x[mid - 24:mid + 24]).max() > 0.05, ph
    gaps = [(a.end, b.start) for a, b in zip(said.phonemes, said.phonemes[1:], strict=False)
            if b.start - a.end > 0.1]
    assert len(gaps) == 2  # the comma's pause and the one between sentences
    for a, b in gaps:  # silent where the timing says nothing is said
        assert np.abs(x[int((a + 0.02) * rate):int((b - 0.02) * rate)]).max() < 0.01
