"""Reading multipart uploads with a size cap: the read stops one byte past the limit, so an
oversized file is refused without holding all of it."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile

from models.errors import PayloadTooLarge


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
