"""Remote engines that fail in every way: connection refused, timeouts, 500, 429 with
Retry-After, malformed JSON and truncated audio/images, injected by the protocol stubs in
``tests/stubs``. Each ends in a clean studio error (or a fallback) — never a traceback or a
hang — retries back off with jitter, and the circuit breaker opens after repeated failures
and shows in ``/health``, ``/metrics`` and the Engines panel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.base import Audio, EngineSettings, RenderRequest, Speech, SpeechRequest
from models.chain import FallbackChain
from models.errors import BackendFailed, TransientBackendError
from tests.conftest import free_port
from tests.stubs.did import DidBehaviour, DidStub
from tests.stubs.voicevox import VoicevoxStub

# ------------------------------------------------------------------------ helpers


def assert_jittered_backoff(sleeps: list[float], initial: float, jitter: float) -> None:
    """tenacity's exponential-with-jitter: wait i is initial * 2**i plus up to ``jitter``."""
    assert sleeps, "no retry was made"
    for i, wait in enumerate(sleeps):
        assert initial * 2**i <= wait <= initial * 2**i + jitter + 1e-9, sleeps
    assert any(abs(w - initial * 2**i) > 1e-6 for i, w in enumerate(sleeps)), "no jitter"


@pytest.fixture
def voicevox() -> Iterator[VoicevoxStub]:
    with VoicevoxStub() as stub:
        yield stub


def _vv(url: str, sleeps: list[float], timeout: float = 5.0, attempts: int = 4):
    from models.speech.voicevox import VoicevoxSpeech

    return VoicevoxSpeech(EngineSettings(voicevox_url=url, request_timeout=timeout),
                          attempts=attempts, backoff=0.25, sleep=sleeps.append)


def _say(engine) -> Speech:
    return engine.synthesize(SpeechRequest("こんにちは。", voice="voicevox:2", language="ja"))


# ------------------------------------------------------------------------ VOICEVOX


def test_voicevox_connection_refused_retries_then_clean_error() -> None:
    sleeps: list[float] = []
    engine = _vv(f"http://127.0.0.1:{free_port()}", sleeps)
    with pytest.raises(TransientBackendError) as info:
        _say(engine)
    assert info.value.code == "VOICE_SERVICE_UNAVAILABLE"
    assert info.value.retry_after
    assert len(sleeps) == 3
    assert_jittered_backoff(sleeps, 0.25, 0.25)
    assert engine.available()[0] is False


def test_voicevox_timeout(voicevox: VoicevoxStub) -> None:
    voicevox.delay = 0.6
    sleeps: list[float] = []
    with pytest.raises(TransientBackendError) as info:
        _say(_vv(voicevox.url, sleeps, timeout=0.2, attempts=2))
    assert info.value.code == "VOICE_SERVICE_UNAVAILABLE"
    assert "Timeout" in info.value.message
    assert len(voicevox.requests) == 2


def test_voicevox_500s_recover_then_fail_cleanly(voicevox: VoicevoxStub) -> None:
    sleeps: list[float] = []
    voicevox.fail_next = [503, 503]  # /audio_query twice, then it answers
    speech = _say(_vv(voicevox.url, sleeps))
    assert speech.audio.duration > 0.1
    assert len(sleeps) == 2
    voicevox.fail_paths = {"/synthesis": 500}
    with pytest.raises(TransientBackendError) as info:
        _say(_vv(voicevox.url, []))
    assert info.value.code == "VOICE_SERVICE_UNAVAILABLE"


def test_voicevox_429_honours_retry_after(voicevox: VoicevoxStub) -> None:
    sleeps: list[float] = []
    voicevox.fail_next = [(429, {"Retry-After": "2"})]
    assert _say(_vv(voicevox.url, sleeps)).audio.duration > 0.1
    assert sleeps == [2.0]
    sleeps.clear()
    voicevox.fail_paths = {"/audio_query": (429, {"Retry-After": "999"})}
    with pytest.raises(TransientBackendError) as info:
        _say(_vv(voicevox.url, sleeps))
    assert info.value.code == "VOICE_SERVICE_UNAVAILABLE"
    assert sleeps and all(s <= 20.0 for s in sleeps)  # a huge Retry-After is capped


@pytest.mark.parametrize("fault", ["malformed", "truncated_wav", "truncated_body"])
def test_voicevox_bad_bodies_are_clean_errors(voicevox: VoicevoxStub, fault: str) -> None:
    path = "/audio_query" if fault == "malformed" else "/synthesis"
    voicevox.fail_paths = {path: fault}
    with pytest.raises(TransientBackendError) as info:
        _say(_vv(voicevox.url, []))
    assert info.value.code == "VOICE_SERVICE_UNAVAILABLE"
    assert info.value.message_ja


def test_voicevox_malformed_speakers_list(voicevox: VoicevoxStub) -> None:
    voicevox.fail_paths = {"/speakers": "malformed"}
    engine = _vv(voicevox.url, [])
    with pytest.raises(TransientBackendError):
        engine.synthesize(SpeechRequest("こんにちは。", language="ja"))


def test_chain_falls_back_from_a_broken_voicevox(voicevox: VoicevoxStub) -> None:
    from models.speech.openjtalk import OpenJTalkSpeech

    voicevox.fail_paths = {"/synthesis": "truncated_wav"}
    chain = FallbackChain("tts", [_vv(voicevox.url, []), OpenJTalkSpeech(EngineSettings())])
    result = chain.run(lambda e: e.synthesize(SpeechRequest("こんにちは。", language="ja")))
    assert result.backend == "openjtalk"
    assert result.report()["fallback_used"] is True
    assert "VOICE_SERVICE_UNAVAILABLE" in result.attempts[0].reason


# --------------------------------------------------------------------------- D-ID


def _render_request(tmp_path: Path) -> RenderRequest:
    return RenderRequest(Image.new("RGB", (64, 64), (200, 180, 160)),
                         Speech(Audio(np.full(16000, 0.1, np.float32), 16000)),
                         output=tmp_path / "out.mp4", options={})


def _did(url: str, sleeps: list[float], timeout: float = 5.0, **kw):
    from models.talking_head.did import DidTalkingHead

    return DidTalkingHead(EngineSettings(did_url=url, did_api_key="user:secret",
                                         request_timeout=timeout),
                          sleep=sleeps.append, max_retries=2, download_timeout=5, **kw)


def test_did_connection_refused_retries_with_jitter(tmp_path: Path) -> None:
    sleeps: list[float] = []
    with pytest.raises(TransientBackendError) as info:
        _did(f"http://127.0.0.1:{free_port()}", sleeps).render(_render_request(tmp_path))
    assert info.value.code == "VIDEO_DID_UNREACHABLE"
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.5 and 1.0 <= sleeps[1] <= 3.0
    assert sleeps[0] != 1.0 or sleeps[1] != 2.0  # jittered


def test_did_timeout(tmp_path: Path) -> None:
    with DidStub(DidBehaviour(delay=0.6)) as stub:
        with pytest.raises(TransientBackendError) as info:
            _did(stub.url, [], timeout=0.2).render(_render_request(tmp_path))
    assert info.value.code == "VIDEO_DID_TIMEOUT"


def test_did_500_then_recovers_and_429_retry_after(tmp_path: Path) -> None:
    sleeps: list[float] = []
    behaviour = DidBehaviour(fail_status=[500, 429], retry_after="2", polls_before_done=0,
                             result_bytes=b"\x00\x00\x00\x18ftypmp42")
    with DidStub(behaviour) as stub:
        out = _did(stub.url, sleeps).render(_render_request(tmp_path))
    assert out.read_bytes().startswith(b"\x00\x00\x00\x18ftyp")
    assert 0.5 <= sleeps[0] <= 1.5  # backoff with jitter after the 500
    assert sleeps[1] == 2.0  # the server's Retry-After after the 429


def test_did_malformed_json(tmp_path: Path) -> None:
    with DidStub(DidBehaviour(malformed_json=True, polls_before_done=0)) as stub:
        with pytest.raises(BackendFailed) as info:
            _did(stub.url, []).render(_render_request(tmp_path))
    assert info.value.code == "VIDEO_DID_PROTOCOL"


def test_did_truncated_result(tmp_path: Path) -> None:
    behaviour = DidBehaviour(polls_before_done=0, truncate_result=True,
                             result_bytes=b"v" * 50_000)
    with DidStub(behaviour) as stub:
        with pytest.raises(TransientBackendError) as info:
            _did(stub.url, []).render(_render_request(tmp_path))
    assert info.value.code == "VIDEO_DID_DOWNLOAD"
    assert not (tmp_path / "out.mp4").exists()
    assert not list(tmp_path.glob(".*partial"))


# ---------------------------------------------------------------- AWS (Nova Canvas)

BUCKET = "studio-faults"


@pytest.fixture
def s3_server(moto_s3: str) -> str:
    return moto_s3


@pytest.fixture
def bedrock(s3_server: str, monkeypatch: pytest.MonkeyPatch):
    import boto3

    from tests.stubs.bedrock import BedrockStub

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    with BedrockStub(s3_endpoint=s3_server) as stub:
        stub.s3_url = s3_server
        yield stub


def _nova(stub, sleeps: list[float], mcp: bool = False, url: str | None = None, **kw):
    from models.cutout.aws import NovaCanvasCutout

    endpoint = url or stub.url
    return NovaCanvasCutout(EngineSettings(
        s3_bucket=BUCKET, s3_endpoint_url=stub.s3_url, bedrock_endpoint_url=endpoint,
        aws_mcp_url=endpoint if mcp else None, request_timeout=5), sleep=sleeps.append, **kw)


def _photo() -> Image.Image:
    image = Image.new("RGB", (320, 400), (30, 180, 60))
    ImageDraw.Draw(image).ellipse([100, 60, 220, 200], fill=(220, 170, 140))
    return image


@pytest.mark.parametrize("mcp", [False, True], ids=["bedrock", "mcp"])
def test_aws_connection_refused_retries_then_clean_error(bedrock, mcp: bool) -> None:
    sleeps: list[float] = []
    engine = _nova(bedrock, sleeps, mcp, url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientBackendError) as info:
        engine.cutout(_photo())
    assert info.value.code == "AWS_MCP_UNREACHABLE"
    assert len(sleeps) == 2
    assert_jittered_backoff(sleeps, 0.25, 0.25)


@pytest.mark.parametrize("mcp", [False, True], ids=["bedrock", "mcp"])
def test_aws_timeout(bedrock, mcp: bool) -> None:
    bedrock.mode, bedrock.delay = "slow", 1.5
    with pytest.raises(TransientBackendError) as info:
        _nova(bedrock, [], mcp, read_timeout=0.3, attempts=1).cutout(_photo())
    assert info.value.code == "AWS_MCP_UNREACHABLE"


@pytest.mark.parametrize("mcp", [False, True], ids=["bedrock", "mcp"])
def test_aws_500_then_recovers(bedrock, mcp: bool) -> None:
    sleeps: list[float] = []
    bedrock.script = ["broken"]
    matte = _nova(bedrock, sleeps, mcp).cutout(_photo())
    assert matte[130, 160] > 0.9
    assert len(sleeps) == 1


def test_aws_gateway_429_honours_retry_after(bedrock) -> None:
    sleeps: list[float] = []
    bedrock.script, bedrock.retry_after = ["throttle", "throttle"], "3"
    matte = _nova(bedrock, sleeps, mcp=True, attempts=3).cutout(_photo())
    assert matte[130, 160] > 0.9
    assert sleeps == [3.0, 3.0]


@pytest.mark.parametrize(("mode", "mcp", "code"), [
    ("malformed", False, "AWS_MCP_BAD_RESPONSE"),
    ("malformed", True, "AWS_MCP_ERROR"),
    ("truncated", False, "AWS_MCP_BAD_RESPONSE"),
])
def test_aws_bad_bodies_are_clean_errors(bedrock, mode: str, mcp: bool, code: str) -> None:
    bedrock.mode = mode
    with pytest.raises(BackendFailed) as info:
        _nova(bedrock, [], mcp).cutout(_photo())
    assert info.value.code == code
    assert info.value.message_ja


# ------------------------------------------------- the circuit, end to end in the app


def test_circuit_opens_and_shows_in_health_metrics_and_panel(settings,
                                                              voicevox: VoicevoxStub) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.services import build_services
    from app.ui.engines import inventory_rows

    services = build_services(settings.model_copy(update={
        "voicevox_url": voicevox.url, "tts_backends": ["voicevox", "openjtalk"],
        "rate_limit_per_minute": 0}))
    try:
        breaker = services.chain("tts").get("voicevox")
        breaker.engine.attempts, breaker.engine.sleep = 2, lambda s: None
        voicevox.fail_paths = {"/audio_query": 503}
        body = {"text": "こんにちは。", "language": "ja", "options": {"voice": "voicevox:2"}}
        with TestClient(create_app(services, with_ui=False),
                        raise_server_exceptions=False) as client:
            def row() -> dict:
                engines = client.get("/health").json()["data"]["engines"]["tts"]
                return next(r for r in engines if r["name"] == "voicevox")

            assert row()["circuit"] == "closed"
            for _ in range(breaker.threshold):
                answer = client.post("/api/voice/synthesize", json=body)
                assert answer.status_code == 200, answer.text
                data = answer.json()["data"]
                assert data["backend"] == "openjtalk" and data["fallback_used"] is True
            tried = len(voicevox.requests)
            answer = client.post("/api/voice/synthesize", json=body)
            assert answer.status_code == 200
            assert len(voicevox.requests) == tried  # open: VOICEVOX is not even called
            assert any("circuit open" in a["reason"] for a in answer.json()["data"]["attempts"])
            health = row()
            assert health == {**health, "available": False, "circuit": "open"}
            assert "circuit open" in health["reason"]
            metrics = client.get("/metrics").text
            assert 'studio_engine_circuit_open{capability="tts",engine="voicevox"} 1.0' in metrics
        panel = [r for r in inventory_rows(services.inventory) if r[1] == "voicevox"]
        assert panel[0][2] == "no" and "open" in panel[0][3] and "circuit open" in panel[0][4]
    finally:
        services.close()

