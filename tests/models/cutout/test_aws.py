"""Nova Canvas cutout against moto's S3 server and a Bedrock / MCP stub, all on loopback."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.base import EngineSettings
from models.chain import FallbackChain
from models.cutout.aws import NovaCanvasCutout, fit_for_nova
from models.errors import BackendFailed, BackendUnavailable, TransientBackendError
from tests.conftest import free_port
from tests.stubs.bedrock import BedrockStub

BUCKET = "studio-test"


@pytest.fixture
def s3_server(moto_s3: str) -> str:
    return moto_s3


@pytest.fixture
def aws_env(aws_credentials: None, s3_server: str) -> str:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return s3_server


@pytest.fixture
def stub(aws_env: str) -> Iterator[BedrockStub]:
    with BedrockStub(s3_endpoint=aws_env) as server:
        yield server


def _subject() -> Image.Image:
    image = Image.new("RGB", (400, 500), (30, 180, 60))
    draw = ImageDraw.Draw(image)
    draw.ellipse([140, 60, 260, 200], fill=(220, 170, 140))
    draw.rectangle([90, 200, 310, 500], fill=(40, 40, 120))
    return image


def _engine(aws_env: str, stub: BedrockStub, mcp: bool = False) -> NovaCanvasCutout:
    return NovaCanvasCutout(EngineSettings(
        s3_bucket=BUCKET, s3_endpoint_url=aws_env, bedrock_endpoint_url=stub.url,
        aws_mcp_url=stub.url if mcp else None, request_timeout=5))


def _stored_keys(aws_env: str) -> list[str]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


@pytest.mark.parametrize("mcp", [False, True], ids=["bedrock", "mcp"])
def test_cutout_through_s3_and_nova_canvas(aws_env, stub, mcp: bool) -> None:
    engine = _engine(aws_env, stub, mcp)
    assert engine.available()[0]
    before = set(_stored_keys(aws_env))
    matte = engine.cutout(_subject())
    assert matte.shape == (500, 400)
    assert matte[120, 200] > 0.9  # face
    assert matte[10, 10] < 0.1  # green background
    new = set(_stored_keys(aws_env)) - before
    assert any(k.startswith("inputs/images/") for k in new)
    assert any(k.startswith("processed/background_removal/") for k in new)
    path = stub.requests[-1]["path"]
    assert path == ("/bedrock/invoke" if mcp else "/model/amazon.nova-canvas-v1:0/invoke")
    if mcp:
        body = stub.requests[-1]["body"]
        assert body["task_type"] == "BACKGROUND_REMOVAL"
        assert body["input"]["key"].startswith("inputs/images/")


def test_cutout_with_a_box_only_sends_the_crop(aws_env, stub) -> None:
    engine = _engine(aws_env, stub)
    matte = engine.cutout(_subject(), box=(90, 60, 310, 500))
    assert matte[120, 200] > 0.9
    assert matte[:, :50].max() == 0.0  # outside the padded box


_FAILURES = [
    ("throttle", TransientBackendError, "AWS_MCP_THROTTLED"),
    ("broken", TransientBackendError, "AWS_MCP_UNAVAILABLE"),
    ("reject", BackendFailed, "AWS_MCP_REJECTED"),
]


@pytest.mark.parametrize(("mode", "error", "code", "mcp"), [
    *[(*f, False) for f in _FAILURES], *[(*f, True) for f in _FAILURES],
    ("garbage", BackendFailed, "AWS_MCP_BAD_RESPONSE", False),
])
def test_errors_map_to_aws_mcp_codes(aws_env, stub, mode, error, code, mcp) -> None:
    stub.mode = mode
    with pytest.raises(error) as info:
        _engine(aws_env, stub, mcp).cutout(_subject())
    assert info.value.code == code
    assert info.value.message_ja


def test_unreachable_endpoint_is_transient(aws_env) -> None:
    engine = NovaCanvasCutout(EngineSettings(
        s3_bucket=BUCKET, s3_endpoint_url=aws_env,
        bedrock_endpoint_url=f"http://127.0.0.1:{free_port()}", request_timeout=2))
    with pytest.raises(TransientBackendError) as info:
        engine.cutout(_subject())
    assert info.value.code == "AWS_MCP_UNREACHABLE"


def test_missing_bucket_is_unavailable(aws_env, stub) -> None:
    engine = NovaCanvasCutout(EngineSettings(
        s3_bucket="no-such-bucket", s3_endpoint_url=aws_env, bedrock_endpoint_url=stub.url))
    with pytest.raises(BackendUnavailable) as info:
        engine.cutout(_subject())
    assert info.value.code == "AWS_MCP_ACCESS_DENIED"


def test_not_available_without_bucket() -> None:
    ok, why = NovaCanvasCutout(EngineSettings()).available()
    assert not ok
    assert "S3_BUCKET" in why


def test_chain_falls_back_from_throttled_aws_to_mediapipe(aws_env, stub) -> None:
    from models.cutout.mediapipe import MediapipeCutout

    stub.mode = "throttle"
    chain = FallbackChain("cutout", [_engine(aws_env, stub), MediapipeCutout()])
    result = chain.run(lambda e: e.cutout(_subject()))
    assert result.backend == "mediapipe"
    assert result.attempts[0].outcome == "failed"
    assert "AWS_MCP_THROTTLED" in result.attempts[0].reason


def test_fit_for_nova_sizes() -> None:
    assert fit_for_nova(Image.new("RGB", (100, 200))).size[0] >= 320
    big = fit_for_nova(Image.new("RGB", (5000, 3000)))
    assert big.size[0] * big.size[1] <= 4_194_304
    assert max(big.size) <= 4096


def test_stub_answer_is_png(stub) -> None:
    from tests.stubs.bedrock import key_out_border

    buffer = io.BytesIO()
    _subject().save(buffer, format="PNG")
    out = Image.open(io.BytesIO(key_out_border(buffer.getvalue())))
    assert out.mode == "RGBA"
    assert np.asarray(out)[0, 0, 3] == 0
