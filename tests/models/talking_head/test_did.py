"""The D-ID client against a D-ID-protocol stub over real HTTP on loopback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.base import Audio, EngineSettings, RenderRequest, Speech
from models.chain import FallbackChain
from models.errors import BackendFailed, BackendUnavailable, Cancelled, InvalidInput
from models.talking_head.did import DidTalkingHead
from models.talking_head.mp4 import Mp4Writer
from tests.stubs.did import DidBehaviour, DidStub


@pytest.fixture(scope="module")
def result_mp4(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("did") / "r.mp4"
    with Mp4Writer(path, (64, 64), 25, Audio(np.zeros(8000, np.float32), 16000)) as w:
        for _ in range(12):
            w.write(np.full((64, 64, 3), 128, np.uint8))
    return path.read_bytes()


def request(tmp_path: Path, **options) -> RenderRequest:
    return RenderRequest(Image.new("RGB", (64, 64), (200, 180, 160)),
                         Speech(Audio(np.full(16000, 0.1, np.float32), 16000)),
                         output=tmp_path / "out.mp4", options=options)


def engine(stub: DidStub, key: str = "user:secret", sleeps: list | None = None,
           **kw) -> DidTalkingHead:
    settings = EngineSettings(did_url=stub.url, did_api_key=key)
    return DidTalkingHead(settings, sleep=(sleeps.append if sleeps is not None
                                           else lambda s: None), **kw)


def test_unavailable_without_key() -> None:
    ok, why = DidTalkingHead(EngineSettings()).available()
    assert not ok
    assert "STUDIO_DID_API_KEY" in why


def test_full_talk_with_uploads(tmp_path: Path, result_mp4: bytes) -> None:
    behaviour = DidBehaviour(polls_before_done=3, result_bytes=result_mp4)
    sleeps: list[float] = []
    with DidStub(behaviour) as stub:
        req = request(tmp_path, driver_url="bank://subtle")
        out = engine(stub, sleeps=sleeps).render(req)
    assert out.read_bytes() == result_mp4
    assert req.info["did_talk_id"].startswith("tlk_")
    paths = [p for _, p in behaviour.requests]
    assert paths[:3] == ["/images", "/audios", "/talks"]
    assert paths.count(f"/talks/{req.info['did_talk_id']}") == 4
    talk = behaviour.talks[req.info["did_talk_id"]]["request"]
    assert talk["driver_url"] == "bank://subtle"
    assert talk["config"] == {"stitch": True, "result_format": "mp4"}
    assert talk["script"]["audio_url"].startswith("s3://d-id-audios-prod/")
    assert sleeps == sorted(sleeps)  # backoff grows
    assert sleeps[-1] <= 5.0


def test_presigned_urls_skip_uploads(tmp_path: Path, result_mp4: bytes) -> None:
    behaviour = DidBehaviour(polls_before_done=0, result_bytes=result_mp4)
    with DidStub(behaviour) as stub:
        engine(stub).render(request(tmp_path, source_url="https://bucket.s3/p.jpg",
                                    audio_url="https://bucket.s3/a.wav"))
    assert [p for _, p in behaviour.requests][0] == "/talks"
    talk = next(iter(behaviour.talks.values()))["request"]
    assert talk["driver_url"] == "bank://lively"
    assert talk["source_url"] == "https://bucket.s3/p.jpg"


def test_default_chain_falls_back_when_key_is_refused(tmp_path: Path) -> None:
    with DidStub() as stub:
        with pytest.raises(BackendUnavailable) as info:
            engine(stub, key="wrong").render(request(tmp_path))
    assert info.value.code == "VIDEO_DID_AUTH"
    assert not (tmp_path / "out.mp4").exists()


def test_error_and_rejected(tmp_path: Path) -> None:
    with DidStub(DidBehaviour(final_status="error")) as stub:
        with pytest.raises(BackendFailed) as info:
            engine(stub).render(request(tmp_path))
    assert info.value.code == "VIDEO_DID_FAILED"
    assert "no face" in info.value.message
    with DidStub(DidBehaviour(final_status="rejected")) as stub:
        with pytest.raises(InvalidInput) as info2:
            engine(stub).render(request(tmp_path))
    assert info2.value.code == "VIDEO_DID_REJECTED"


def test_429_honours_retry_after(tmp_path: Path, result_mp4: bytes) -> None:
    behaviour = DidBehaviour(rate_limit_first=2, retry_after="3", polls_before_done=0,
                             result_bytes=result_mp4)
    sleeps: list[float] = []
    with DidStub(behaviour) as stub:
        engine(stub, sleeps=sleeps).render(request(tmp_path))
    assert sleeps[:2] == [3.0, 3.0]
    assert (tmp_path / "out.mp4").exists()


def test_429_forever_is_transient(tmp_path: Path) -> None:
    with DidStub(DidBehaviour(rate_limit_first=100)) as stub:
        with pytest.raises(BackendUnavailable) as info:
            engine(stub, max_retries=2).render(request(tmp_path))
    assert info.value.code == "VIDEO_DID_RATE_LIMITED"


def test_slow_job_times_out(tmp_path: Path) -> None:
    with DidStub(DidBehaviour(polls_before_done=10_000)) as stub:
        with pytest.raises(BackendUnavailable) as info:
            engine(stub, poll_timeout=12.0).render(request(tmp_path))
    assert info.value.code == "VIDEO_DID_TIMEOUT"


def test_cancel_deletes_the_talk(tmp_path: Path) -> None:
    behaviour = DidBehaviour(polls_before_done=10_000)
    with DidStub(behaviour) as stub:
        def progress(fraction: float, step: str) -> None:
            if step == "render":
                raise Cancelled()

        with pytest.raises(Cancelled):
            engine(stub).render(request(tmp_path), progress=progress)
    assert next(iter(behaviour.talks.values()))["deleted"]


def test_chain_reports_did_when_local_engines_fail(tmp_path: Path, result_mp4: bytes) -> None:
    class Broken:
        name = "builtin"

        def available(self) -> tuple[bool, str]:
            return True, "ok"

        def render(self, request, progress=None):
            raise BackendUnavailable("down", code="VIDEO_BUILTIN_DOWN")

        def close(self) -> None:
            pass

    with DidStub(DidBehaviour(polls_before_done=0, result_bytes=result_mp4)) as stub:
        chain = FallbackChain("talking_head", [Broken(), engine(stub)])
        req = request(tmp_path)
        result = chain.run(lambda e: e.render(req))
    assert result.backend == "did"
    assert result.report()["fallback_method"] == "did"
