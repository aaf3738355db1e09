"""Reading multipart uploads with a size cap: the read stops one byte past the limit, so an
oversized file is refused without holding all of it."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile

from models.errors import PayloadTooLarge
from pipelines.media import LIMITS

IMAGE_MAX_BYTES = LIMITS.image_max_bytes
AUDIO_MAX_BYTES = LIMITS.audio_max_bytes
BGM_MAX_BYTES = LIMITS.bgm_max_bytes
TEXT_MAX_CHARS = LIMITS.text_max_chars
"""The caps each door reads uploads under (the media limits the pipelines decode with)."""


async def read_capped(upload: UploadFile, max_bytes: int, code: str, *,
                      name: str | None = None, **details: Any) -> bytes:
    """The file's bytes, or ``code`` (413) when it is larger than ``max_bytes``."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        label = name or upload.filename or "upload"
        raise PayloadTooLarge(
            f"{label}: the file is larger than {max_bytes / 1e6:.0f} MB.", code=code,
            message_ja=f"{label}: ファイルが大きすぎます（上限 {max_bytes / 1e6:.0f} MB）。",
            details={"filename": label, "max_bytes": max_bytes, **details})
    return data
