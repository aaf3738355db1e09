"""Remote cutout: Amazon Nova Canvas BACKGROUND_REMOVAL, with the photo staged in S3.

Two ways to reach it, both storing the input under ``inputs/images/`` and the result under
``processed/background_removal/`` in ``STUDIO_S3_BUCKET``:

* direct: boto3 ``bedrock-runtime.invoke_model(modelId="amazon.nova-canvas-v1:0")`` with
  ``{"taskType": "BACKGROUND_REMOVAL", "backgroundRemovalParams": {"image": <base64>}}``,
  answered by ``{"images": [<base64 PNG>]}``;
* through the seed's AWS MCP gateway when ``STUDIO_AWS_MCP_URL`` is set:
  ``POST {url}/bedrock/invoke`` with ``{"model_id", "task_type", "input": {"bucket", "key"},
  "output": {"bucket", "key"}}``; the gateway reads the input from S3 and writes the PNG to
  the output key, answering ``{"success": true, "output": {"bucket", "key"}}``.

Every botocore / httpx error is translated here into ``AWS_MCP_*`` codes: throttling, 5xx and
unreachable endpoints are transient (the chain moves on), missing credentials or access are
"unavailable", and a refusal of the image itself (content filters) is a failure.

Transient failures are retried here, per call, with exponential backoff and jitter
(tenacity, as the VOICEVOX client does; a gateway's ``Retry-After`` is honoured up to
``MAX_RETRY_AFTER``); botocore's own retries are off so the two do not multiply.
"""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from PIL import Image
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from models.base import EngineSettings
from models.errors import BackendFailed, BackendUnavailable, StudioError, TransientBackendError
from models.imaging import padded_box, rgb_array

MODEL_ID = "amazon.nova-canvas-v1:0"
MAX_PIXELS = 4_194_304  # Nova Canvas input limit (2048x2048)
MIN_SIDE, MAX_SIDE = 320, 4096
TRANSIENT_CODES = {"ThrottlingException", "ServiceUnavailableException", "InternalServerException",
                   "ModelNotReadyException", "ModelTimeoutException", "SlowDown",
                   "RequestTimeout", "InternalError", "ServiceUnavailable"}
MAX_RETRY_AFTER = 20.0
T = TypeVar("T")
ACCESS_CODES = {"AccessDeniedException", "UnrecognizedClientException", "AccessDenied",
                "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredTokenException",
                "ResourceNotFoundException", "NoSuchBucket"}


def _error(cls: type[StudioError], code: str, message: str, message_ja: str,
           **details: Any) -> StudioError:
    return cls(message, code=code, message_ja=message_ja, details=details,
               retry_after=30 if cls is TransientBackendError else None)


def translate_boto_error(exc: Exception, during: str) -> Exception:
    """A botocore error -> the studio's error tree (``AWS_MCP_*``)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, NoCredentialsError):
        return _error(BackendUnavailable, "AWS_MCP_NO_CREDENTIALS",
                      f"No AWS credentials for {during}.",
                      f"{during} 用の AWS 認証情報がありません。", during=during)
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return _error(TransientBackendError, "AWS_MCP_UNREACHABLE",
                      f"AWS endpoint unreachable during {during}: {exc}",
                      f"{during} 中に AWS に接続できません。", during=during)
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = str(err.get("Message", "")) or code
        details = {"during": during, "aws_code": code, "http_status": status}
        if code in TRANSIENT_CODES or status == 429 or status >= 500:
            return _error(TransientBackendError, "AWS_MCP_THROTTLED" if (
                status == 429 or "Throttl" in code or code == "SlowDown")
                else "AWS_MCP_UNAVAILABLE", f"AWS {during} failed for now: {message}",
                f"AWS の {during} が一時的に失敗しました: {message}", **details)
        if code in ACCESS_CODES or status in (401, 403):
            return _error(BackendUnavailable, "AWS_MCP_ACCESS_DENIED",
                          f"AWS refused access during {during}: {message}",
                          f"AWS の {during} でアクセスが拒否されました: {message}", **details)
        if code == "ValidationException":
            return _error(BackendFailed, "AWS_MCP_REJECTED",
                          f"Nova Canvas refused the image: {message}",
                          f"Nova Canvas が画像を受け付けませんでした: {message}", **details)
        return _error(BackendFailed, "AWS_MCP_ERROR", f"AWS {during} failed: {message}",
                      f"AWS の {during} に失敗しました: {message}", **details)
    if isinstance(exc, BotoCoreError):
        return _error(TransientBackendError, "AWS_MCP_UNAVAILABLE",
                      f"AWS {during} failed: {exc}", f"AWS の {during} に失敗しました。",
                      during=during)
    return exc


def fit_for_nova(image: Image.Image) -> Image.Image:
    """Resize into Nova Canvas' accepted sizes (sides 320-4096, at most 4.19 MP)."""
    w, h = image.size
    scale = 1.0
    if w * h > MAX_PIXELS:
        scale = (MAX_PIXELS / (w * h)) ** 0.5
    if max(w, h) * scale > MAX_SIDE:
        scale = MAX_SIDE / max(w, h)
    if min(w, h) * scale < MIN_SIDE:
        scale = MIN_SIDE / min(w, h)
    if abs(scale - 1.0) < 1e-6:
        return image
    return image.resize((max(int(w * scale), MIN_SIDE if w <= h else 1),
                         max(int(h * scale), MIN_SIDE if h <= w else 1)),
                        Image.Resampling.LANCZOS)


class NovaCanvasCutout:
    """Person cutout through Amazon Nova Canvas (direct boto3, or the seed's MCP gateway)."""

    name = "aws"

    def __init__(self, settings: EngineSettings | None = None, *, s3_client: Any = None,
                 bedrock_client: Any = None, http_client: Any = None, attempts: int = 3,
                 backoff: float = 0.25, max_backoff: float = 4.0,
                 read_timeout: float | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings or EngineSettings()
        self._s3 = s3_client
        self._bedrock = bedrock_client
        self._http = http_client
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        # Nova Canvas can take a while: a long read timeout unless told otherwise
        self.read_timeout = read_timeout or max(self.settings.request_timeout, 60.0)
        self.sleep = sleep

    def _wait(self) -> Callable[[Any], float]:
        jitter = wait_exponential_jitter(initial=self.backoff, max=self.max_backoff,
                                         jitter=self.backoff)

        def wait(state: Any) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hinted = (getattr(exc, "details", None) or {}).get("server_retry_after")
            base = jitter(state)
            return min(max(base, float(hinted)), MAX_RETRY_AFTER) if hinted else base

        return wait

    def _retry(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)``, again on a transient failure (backoff with jitter)."""
        retrying = Retrying(stop=stop_after_attempt(self.attempts), wait=self._wait(),
                            retry=retry_if_exception_type(TransientBackendError),
                            sleep=self.sleep, reraise=True)
        return retrying(call, *args)

    # -- clients (built lazily: boto3 import costs ~0.3 s) ---------------------------

    def _config(self) -> Any:
        from botocore.config import Config

        # one try per call: the retries (with jitter) are ours, in _retry
        return Config(retries={"total_max_attempts": 1, "mode": "standard"},
                      connect_timeout=min(5.0, self.read_timeout),
                      read_timeout=self.read_timeout)

    def s3(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3", region_name=self.settings.aws_region,
                                    endpoint_url=self.settings.s3_endpoint_url,
                                    config=self._config())
        return self._s3

    def bedrock(self) -> Any:
        if self._bedrock is None:
            import boto3

            self._bedrock = boto3.client("bedrock-runtime", region_name=self.settings.aws_region,
                                         endpoint_url=self.settings.bedrock_endpoint_url,
                                         config=self._config())
        return self._bedrock

    def http(self) -> Any:
        if self._http is None:
            import httpx

            self._http = httpx.Client(timeout=httpx.Timeout(
                self.read_timeout, connect=min(5.0, self.read_timeout)))
        return self._http

    def available(self) -> tuple[bool, str]:
        if not self.settings.s3_bucket:
            return False, "STUDIO_S3_BUCKET is not set (Nova Canvas reads the photo from S3)"
        if self.settings.aws_mcp_url:
            return True, f"Nova Canvas via AWS MCP gateway {self.settings.aws_mcp_url}"
        return True, f"Nova Canvas via bedrock-runtime ({self.settings.aws_region})"

    # -- the work --------------------------------------------------------------------

    def _put(self, key: str, data: bytes) -> None:
        try:
            self.s3().put_object(Bucket=self.settings.s3_bucket, Key=key, Body=data,
                                 ContentType="image/png")
        except Exception as exc:  # translated at the boundary
            raise translate_boto_error(exc, "S3 upload") from exc

    def _get(self, key: str) -> bytes:
        try:
            return bytes(self.s3().get_object(Bucket=self.settings.s3_bucket, Key=key)["Body"]
                         .read())
        except Exception as exc:
            raise translate_boto_error(exc, "S3 download") from exc

    def _invoke_direct(self, png: bytes) -> bytes:
        body = {"taskType": "BACKGROUND_REMOVAL",
                "backgroundRemovalParams": {"image": base64.b64encode(png).decode("ascii")}}
        try:
            response = self.bedrock().invoke_model(
                modelId=MODEL_ID, body=json.dumps(body), contentType="application/json",
                accept="application/json")
            payload = json.loads(response["body"].read())
        except (ValueError, KeyError) as exc:
            raise _error(BackendFailed, "AWS_MCP_BAD_RESPONSE",
                         f"Nova Canvas answered something unreadable: {exc}",
                         "Nova Canvas の応答を読めません。") from exc
        except Exception as exc:
            raise translate_boto_error(exc, "Bedrock invoke_model") from exc
        if payload.get("error"):
            raise _error(BackendFailed, "AWS_MCP_REJECTED",
                         f"Nova Canvas refused the image: {payload['error']}",
                         f"Nova Canvas が画像を受け付けませんでした: {payload['error']}")
        images = payload.get("images") or []
        if not images:
            raise _error(BackendFailed, "AWS_MCP_BAD_RESPONSE", "Nova Canvas returned no image.",
                         "Nova Canvas が画像を返しませんでした。")
        try:
            return base64.b64decode(images[0], validate=True)
        except ValueError as exc:
            raise _error(BackendFailed, "AWS_MCP_BAD_RESPONSE",
                         "Nova Canvas returned an image that is not base64.",
                         "Nova Canvas の画像データが不正です。") from exc

    def _invoke_mcp(self, input_key: str, output_key: str) -> str:
        import httpx

        base = self.settings.aws_mcp_url
        if base is None:  # available() refuses the MCP route without its URL
            raise _error(BackendUnavailable, "AWS_MCP_NOT_CONFIGURED",
                         "No AWS MCP URL is configured.", "AWS MCP の URL が設定されていません。")
        url = base.rstrip("/") + "/bedrock/invoke"
        bucket = self.settings.s3_bucket
        request = {"model_id": MODEL_ID, "task_type": "BACKGROUND_REMOVAL",
                   "input": {"bucket": bucket, "key": input_key},
                   "output": {"bucket": bucket, "key": output_key}}
        try:
            response = self.http().post(url, json=request)
        except (httpx.ConnectError, httpx.TimeoutException, httpx.NetworkError,
                httpx.RemoteProtocolError) as exc:
            raise _error(TransientBackendError, "AWS_MCP_UNREACHABLE",
                         f"AWS MCP gateway unreachable: {exc}",
                         "AWS MCP ゲートウェイに接続できません。", url=url) from exc
        if response.status_code == 429 or response.status_code >= 500:
            hint = _retry_after(response.headers.get("retry-after"))
            raise _error(TransientBackendError,
                         "AWS_MCP_THROTTLED" if response.status_code == 429
                         else "AWS_MCP_UNAVAILABLE",
                         f"AWS MCP gateway answered {response.status_code}.",
                         f"AWS MCP ゲートウェイが {response.status_code} を返しました。",
                         http_status=response.status_code,
                         **({"server_retry_after": hint} if hint is not None else {}))
        if response.status_code in (401, 403):
            raise _error(BackendUnavailable, "AWS_MCP_ACCESS_DENIED",
                         f"AWS MCP gateway refused access ({response.status_code}).",
                         "AWS MCP ゲートウェイにアクセスを拒否されました。",
                         http_status=response.status_code)
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code >= 400 or not payload.get("success", False):
            error = payload.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise _error(BackendFailed, "AWS_MCP_REJECTED" if response.status_code == 400
                         else "AWS_MCP_ERROR",
                         f"AWS MCP gateway failed: {message or response.status_code}",
                         f"AWS MCP ゲートウェイでの処理に失敗しました: {message or ''}",
                         http_status=response.status_code)
        output = payload.get("output") or {}
        return str(output.get("key") or output_key)

    def remove_background(self, image: Image.Image) -> tuple[Image.Image, dict[str, str]]:
        """The RGBA result for ``image`` and the S3 keys used (input, output)."""
        png_buffer = io.BytesIO()
        fit_for_nova(image.convert("RGB")).save(png_buffer, format="PNG")
        input_key = f"inputs/images/{uuid.uuid4().hex}.png"
        output_key = f"processed/background_removal/{uuid.uuid4().hex}.png"
        self._retry(self._put, input_key, png_buffer.getvalue())
        if self.settings.aws_mcp_url:
            output_key = self._retry(self._invoke_mcp, input_key, output_key)
            result_png = self._retry(self._get, output_key)
        else:
            result_png = self._retry(self._invoke_direct, png_buffer.getvalue())
            self._retry(self._put, output_key, result_png)
        try:
            result = Image.open(io.BytesIO(result_png))
            result.load()
        except OSError as exc:
            raise _error(BackendFailed, "AWS_MCP_BAD_RESPONSE",
                         "Nova Canvas returned something that is not an image.",
                         "Nova Canvas の応答が画像ではありません。") from exc
        return result.convert("RGBA"), {"input_key": input_key, "output_key": output_key}

    def cutout(self, image: Any, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        rgb = rgb_array(image)
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = padded_box(box, w, h) if box else (0, 0, w, h)
        crop = Image.fromarray(rgb[y0:y1, x0:x1])
        result, _ = self.remove_background(crop)
        alpha = result.getchannel("A").resize(crop.size, Image.Resampling.BILINEAR)
        matte = np.zeros((h, w), np.float32)
        matte[y0:y1, x0:x1] = np.asarray(alpha, np.float32) / 255.0
        return matte

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form), None when absent/odd."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
