"""D-ID talks API client: the remote talking-head fallback.

Protocol (https://docs.d-id.com, summarised in shared research): upload the portrait
(``POST /images``, multipart ``image``) and the audio (``POST /audios``, multipart ``audio``)
— or pass presigned URLs via ``options['source_url']`` / ``options['audio_url']`` — then
``POST /talks`` with ``source_url``, ``script: {type: audio, audio_url}``, ``driver_url``
(default ``bank://lively``) and ``config`` (``stitch``, ``result_format``); poll
``GET /talks/{id}`` with backoff until ``done`` / ``error`` / ``rejected`` or a timeout, and
download ``result_url``.

Errors are translated here: a missing/refused key or an unreachable/overloaded service is
``BackendUnavailable`` (the chain may move on), a rejected or failed talk is not. 429 answers
are retried after ``Retry-After`` (or an exponential backoff).
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from models.base import EngineSettings, ProgressFn, RenderRequest, no_progress
from models.errors import (
    BackendFailed,
    BackendUnavailable,
    Cancelled,
    InvalidInput,
    PayloadTooLarge,
    TransientBackendError,
)
from models.net import OutboundRules, Resolver, SafeHttp, UrlRefused, system_resolver

DEFAULT_DRIVER = "bank://lively"
FINAL = {"done", "error", "rejected"}


class DidTalkingHead:
    """Engine ``did``: needs ``STUDIO_DID_API_KEY`` (``STUDIO_DID_URL`` for another host)."""

    name = "did"

    def __init__(self, settings: EngineSettings | None = None, *,
                 client: httpx.Client | None = None, poll_timeout: float = 300.0,
                 max_retries: int = 4, sleep: Callable[[float], None] = time.sleep,
                 resolver: Resolver = system_resolver,
                 download_transport: httpx.BaseTransport | None = None,
                 download_timeout: float = 300.0,
                 random: Callable[[], float] = random.random) -> None:
        self.settings = settings or EngineSettings()
        self.base_url = self.settings.did_url.rstrip("/")
        self.key = self.settings.did_api_key
        self._client = client
        self.poll_timeout = poll_timeout
        self.max_retries = max_retries
        self.sleep = sleep
        self.resolver = resolver
        self.random = random
        self.download_transport = download_transport
        self.download_timeout = download_timeout

    def available(self) -> tuple[bool, str]:
        if not self.key:
            return False, "STUDIO_DID_API_KEY is not set"
        return True, f"D-ID at {self.base_url}"

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            # no redirects: the API answers directly; a redirect must not carry the key
            self._client = httpx.Client(timeout=self.settings.request_timeout,
                                        follow_redirects=False)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- HTTP ------------------------------------------------------------------------------

    def _backoff(self, delay: float) -> float:
        """Exponential backoff with jitter (so many workers do not retry in step)."""
        return delay * (0.5 + self.random())

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One API call with auth, retries (connection refused, timeouts, 429, 5xx; backoff
        with jitter, or the server's ``Retry-After``) and error translation."""
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        headers = {"Authorization": f"Basic {self.key}", "Accept": "application/json"}
        delay = 1.0
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.request(method, url, headers=headers, **kw)
            except (httpx.TimeoutException, httpx.ConnectError) as exc:
                # a refused connection never sent the request: safe to send again
                if attempt < self.max_retries:
                    self.sleep(self._backoff(delay))
                    delay = min(delay * 2, 20)
                    continue
                if isinstance(exc, httpx.TimeoutException):
                    raise TransientBackendError("D-ID did not answer in time.",
                                                code="VIDEO_DID_TIMEOUT",
                                                message_ja="D-ID が時間内に応答しませんでした。",
                                                retry_after=30) from exc
                raise TransientBackendError(f"D-ID is unreachable: {type(exc).__name__}.",
                                            code="VIDEO_DID_UNREACHABLE",
                                            message_ja="D-ID に接続できません。",
                                            retry_after=30) from exc
            except httpx.HTTPError as exc:
                raise TransientBackendError(f"D-ID is unreachable: {type(exc).__name__}.",
                                            code="VIDEO_DID_UNREACHABLE",
                                            message_ja="D-ID に接続できません。",
                                            retry_after=30) from exc
            status = response.status_code
            if status == 429 or status >= 500:
                if attempt < self.max_retries:
                    self.sleep(_retry_after(response, self._backoff(delay)))
                    delay = min(delay * 2, 20)
                    continue
                if status == 429:
                    raise TransientBackendError(
                        "D-ID is rate limiting this key; try again later.",
                        code="VIDEO_DID_RATE_LIMITED", message_ja="D-ID のレート制限中です。",
                        retry_after=_retry_after(response, 30.0))
                raise TransientBackendError(f"D-ID answered HTTP {status}.",
                                            code="VIDEO_DID_UNAVAILABLE",
                                            message_ja="D-ID が一時的に利用できません。",
                                            retry_after=30)
            if status in (401, 403):
                raise BackendUnavailable(
                    f"D-ID refused the API key ({_describe(response)}).",
                    code="VIDEO_DID_AUTH", message_ja="D-ID の API キーが拒否されました。",
                    details={"status": status})
            if status == 404:
                raise BackendFailed(f"D-ID: not found ({_describe(response)}).",
                                    code="VIDEO_DID_NOT_FOUND",
                                    message_ja="D-ID: 対象が見つかりません。")
            if status >= 400:
                raise InvalidInput(f"D-ID refused the request: {_describe(response)}",
                                   code="VIDEO_DID_BAD_REQUEST",
                                   message_ja=f"D-ID がリクエストを拒否しました: {_describe(response)}",
                                   details={"status": status})
            if 300 <= status < 400:
                raise BackendFailed(f"D-ID answered an unexpected redirect (HTTP {status}).",
                                    code="VIDEO_DID_PROTOCOL", message_ja="D-ID の応答が不正です。")
            return response
        raise AssertionError("unreachable")

    def upload(self, kind: str, filename: str, data: bytes, content_type: str) -> str:
        """``POST /images`` or ``/audios``; returns the hosted URL."""
        field = "image" if kind == "images" else "audio"
        response = self._call("POST", f"/{kind}", files={field: (filename, data, content_type)})
        url = _json(response).get("url")
        if not url:
            raise BackendFailed(f"D-ID upload to /{kind} returned no url.",
                                code="VIDEO_DID_PROTOCOL", message_ja="D-ID の応答が不正です。")
        return str(url)

    def create_talk(self, source_url: str, audio_url: str, options: dict[str, Any]) -> str:
        body = {
            "source_url": source_url,
            "script": {"type": "audio", "audio_url": audio_url},
            "driver_url": options.get("driver_url") or DEFAULT_DRIVER,
            "config": {"stitch": bool(options.get("stitch", True)),
                       "result_format": options.get("result_format") or "mp4"},
        }
        data = _json(self._call("POST", "/talks", json=body))
        talk_id = data.get("id")
        if not talk_id:
            raise BackendFailed("D-ID created no talk id.", code="VIDEO_DID_PROTOCOL",
                                message_ja="D-ID の応答が不正です。")
        return str(talk_id)

    def wait(self, talk_id: str, progress: ProgressFn = no_progress) -> dict[str, Any]:
        """Poll until the talk is final (backoff 1 s -> 5 s) or ``poll_timeout`` passes."""
        started = time.monotonic()
        delay = 1.0
        waited = 0.0
        while True:
            data = _json(self._call("GET", f"/talks/{talk_id}"))
            status = data.get("status")
            if status == "done":
                return data
            if status == "rejected":
                raise InvalidInput("D-ID rejected the portrait or audio (content policy).",
                                   code="VIDEO_DID_REJECTED",
                                   message_ja="D-ID が画像または音声を拒否しました。",
                                   details={"talk_id": talk_id, "error": data.get("error")})
            if status == "error":
                error = data.get("error") or {}
                raise BackendFailed(
                    f"D-ID failed the talk: {error.get('description') or error.get('kind') or 'error'}",
                    code="VIDEO_DID_FAILED", message_ja="D-ID で動画生成に失敗しました。",
                    details={"talk_id": talk_id, "error": error})
            if time.monotonic() - started > self.poll_timeout or waited > self.poll_timeout:
                raise TransientBackendError(f"D-ID talk {talk_id} did not finish in "
                                            f"{self.poll_timeout:.0f} s.",
                                            code="VIDEO_DID_TIMEOUT",
                                            message_ja="D-ID の生成が時間内に終わりませんでした。",
                                            details={"talk_id": talk_id})
            progress(min(0.9, 0.3 + waited / max(self.poll_timeout, 1.0)), "render")
            self.sleep(delay)
            waited += delay
            delay = min(delay * 1.5, 5.0)

    def render(self, request: RenderRequest, progress: ProgressFn = no_progress) -> Path:
        progress(0.0, "upload")
        options = dict(request.options)
        source_url = options.get("source_url")
        if not source_url:
            buf = io.BytesIO()
            request.image.convert("RGB").save(buf, format="JPEG", quality=92)
            source_url = self.upload("images", "portrait.jpg", buf.getvalue(), "image/jpeg")
        audio_url = options.get("audio_url")
        if not audio_url:
            import soundfile as sf

            buf = io.BytesIO()
            audio = request.speech.audio
            sf.write(buf, audio.samples, audio.sample_rate, format="WAV", subtype="PCM_16")
            audio_url = self.upload("audios", "speech.wav", buf.getvalue(), "audio/wav")
        progress(0.2, "submit")
        talk_id = self.create_talk(source_url, audio_url, options)
        request.info["did_talk_id"] = talk_id
        try:
            data = self.wait(talk_id, progress)
        except Cancelled:
            try:
                self._call("DELETE", f"/talks/{talk_id}")
            except Exception:  # best effort: the job is cancelled anyway
                pass
            raise
        result_url = data.get("result_url")
        if not result_url:
            raise BackendFailed("D-ID finished without a result_url.",
                                code="VIDEO_DID_PROTOCOL", message_ja="D-ID の応答が不正です。")
        progress(0.92, "download")
        self._download(str(result_url), Path(request.output))
        progress(1.0, "done")
        return Path(request.output)

    def _download(self, url: str, target: Path, max_bytes: int = 500_000_000) -> None:
        """Fetch the result under the outbound rules (``models.net``): https to a public
        address, or D-ID's own configured origin; redirects re-checked; size/time capped."""
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        http = SafeHttp(OutboundRules(any_public_host=True, trusted_origins=(self.base_url,),
                                      timeout=self.download_timeout),
                        resolver=self.resolver, transport=self.download_transport)
        try:
            with partial.open("wb") as handle:
                http.stream(url, max_bytes=max_bytes, area="VIDEO_DID_RESULT",
                            sink=handle.write)
            partial.replace(target)
        except UrlRefused as exc:
            reason = exc.details.get("reason")
            if reason == "http_status":
                raise TransientBackendError(
                    f"Downloading the D-ID result failed (HTTP {exc.details.get('status')}).",
                    code="VIDEO_DID_DOWNLOAD", message_ja="D-ID の結果を取得できません。",
                    details=exc.details) from exc
            raise BackendFailed(
                f"D-ID's result link was refused by the outbound rules ({reason}): "
                f"{exc.message}", code="VIDEO_DID_UNSAFE_URL",
                message_ja="D-ID の結果 URL は安全でないため取得しませんでした。",
                details=exc.details) from exc
        except PayloadTooLarge as exc:
            raise BackendFailed("The D-ID result is too large.", code="VIDEO_DID_DOWNLOAD",
                                message_ja="D-ID の結果が大きすぎます。",
                                details=exc.details) from exc
        except TransientBackendError as exc:
            raise TransientBackendError(f"Downloading the D-ID result failed: {exc.message}",
                                        code="VIDEO_DID_DOWNLOAD",
                                        message_ja="D-ID の結果を取得できません。",
                                        details={"cause": exc.code}) from exc
        finally:
            partial.unlink(missing_ok=True)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise BackendFailed("D-ID answered with something that is not JSON.",
                            code="VIDEO_DID_PROTOCOL", message_ja="D-ID の応答が不正です。") from None
    return data if isinstance(data, dict) else {}


def _describe(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(data, dict):
        return str(data.get("description") or data.get("message") or data.get("kind")
                   or f"HTTP {response.status_code}")
    return f"HTTP {response.status_code}"


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("retry-after")
    try:
        return min(max(float(value), 0.0), 60.0) if value else default
    except ValueError:
        return default
