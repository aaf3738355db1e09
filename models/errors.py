"""The studio's error tree, shared by engines, pipelines and the API edge.

Engines translate their dependencies' errors (httpx, botocore, onnxruntime) into these at
the boundary (``raise ... from exc``); the API picks the HTTP status from ``kind`` in one
exception handler, so no module below ``app/`` knows about HTTP.

    StudioError                 code, message (en), message_ja, details, retry_after
    ├── InvalidInput            bad input: never retried, never a reason to fall back  -> 400
    ├── PayloadTooLarge         a size or duration limit                               -> 413
    ├── NotFound                an id or key that does not exist                       -> 404
    ├── Conflict                the state forbids it (cancel a finished job)           -> 409
    ├── RateLimited             slow down; ``retry_after`` seconds                     -> 429
    ├── BackendUnavailable      engine missing or unhealthy: the chain moves on        -> 503
    │   └── TransientBackendError  a passing failure (timeout, 5xx): the chain moves on
    ├── Cancelled               the job was cancelled while it ran                    -> 409
    └── BackendFailed           the engine ran and failed on good input               -> 500
"""

from __future__ import annotations

from typing import Any, ClassVar


class StudioError(Exception):
    """Base of every error the studio reports to a person or a script."""

    kind: ClassVar[str] = "internal"
    default_code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        message_ja: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.message_ja = message_ja
        self.details = details or {}
        self.retry_after = retry_after

    def localized(self, lang: str) -> str:
        """The message in ``lang`` ("ja" or "en"), English when no translation exists."""
        if lang.startswith("ja") and self.message_ja:
            return self.message_ja
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message})"


class InvalidInput(StudioError):
    kind = "invalid"
    default_code = "VALIDATION_ERROR"


class PayloadTooLarge(InvalidInput):
    kind = "too_large"
    default_code = "VALIDATION_TOO_LARGE"


class NotFound(StudioError):
    kind = "not_found"
    default_code = "NOT_FOUND"


class Conflict(StudioError):
    kind = "conflict"
    default_code = "CONFLICT"


class RateLimited(StudioError):
    kind = "rate_limited"
    default_code = "RATE_LIMITED"


class BackendUnavailable(StudioError):
    kind = "unavailable"
    default_code = "SERVICE_UNAVAILABLE"


class TransientBackendError(BackendUnavailable):
    default_code = "SERVICE_TEMPORARILY_UNAVAILABLE"


class BackendFailed(StudioError):
    kind = "internal"
    default_code = "BACKEND_FAILED"


class Cancelled(StudioError):
    kind = "conflict"
    default_code = "QUEUE_JOB_CANCELLED"

    def __init__(self, message: str = "The job was cancelled.", **kw: Any) -> None:
        kw.setdefault("message_ja", "ジョブはキャンセルされました。")
        super().__init__(message, **kw)
