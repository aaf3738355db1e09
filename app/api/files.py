"""``/files/{key}``: serves local-storage artifacts by key (never a directory listing)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.storage import LocalStorage, Storage, content_type
from models.errors import NotFound


def create_router(storage: Storage) -> APIRouter:
    router = APIRouter(tags=["files"])

    @router.get("/files/{key:path}", include_in_schema=False)
    def get_file(key: str) -> FileResponse:
        if not isinstance(storage, LocalStorage) or not storage.exists(key):
            raise NotFound(f"No file {key!r}.", code="STORAGE_NOT_FOUND",
                           message_ja=f"ファイル {key!r} がありません。")
        return FileResponse(storage.local_path(key), media_type=content_type(key))

    return router
