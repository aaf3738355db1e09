"""Reading audio out of multipart forms for the prosody and BGM routes: size-capped reads,
a stored key instead of an upload, JSON ``params`` merged with plain form fields."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData, UploadFile

from app.api.uploads import read_capped
from app.fetch import is_private_key
from app.storage import Storage
from models.errors import InvalidInput, NotFound

# stored audio a route may read by key (another stage's output, an earlier upload)
READABLE_PREFIXES = ("voices/", "prosody/", "inputs/audio/", "bgm/")


async def read_upload(upload: UploadFile, max_bytes: int, *, area: str) -> bytes:
    """The file's bytes; ``{area}_AUDIO_TOO_LARGE`` past ``max_bytes`` (read stops there)."""
    return await read_capped(upload, max_bytes, f"{area}_AUDIO_TOO_LARGE")


async def audio_from_form(form: FormData, storage: Storage, *, file_field: str,
                          key_field: str, area: str, max_bytes: int) -> tuple[bytes, str]:
    """(bytes, filename) from an uploaded file in ``file_field`` or a storage key in
    ``key_field``; ``{area}_AUDIO_INVALID`` (reason ``missing``) when neither is there."""
    upload = form.get(file_field)
    if isinstance(upload, UploadFile):
        return await read_upload(upload, max_bytes, area=area), upload.filename or file_field
    key = form.get(key_field)
    if isinstance(key, str) and key.strip():
        key = key.strip()
        if not key.startswith(READABLE_PREFIXES) or is_private_key(key):
            raise InvalidInput(f"{key_field} must name stored audio under "
                               f"{', '.join(READABLE_PREFIXES)}.", code=f"{area}_AUDIO_INVALID",
                               message_ja=f"{key_field} には保存済みの音声キーを指定してください。",
                               details={"reason": "key", "field": key_field})
        try:
            data = storage.get(key)
        except NotFound:
            raise InvalidInput(f"No stored audio {key!r}.", code=f"{area}_AUDIO_INVALID",
                               message_ja=f"保存された音声 {key!r} がありません。",
                               details={"reason": "key_not_found", "field": key_field}) from None
        return data, key.rsplit("/", 1)[-1]
    raise InvalidInput(f"Send the audio as a file in '{file_field}' (multipart) or a stored "
                       f"key in '{key_field}'.", code=f"{area}_AUDIO_INVALID",
                       message_ja=f"音声ファイルを '{file_field}' で送ってください。",
                       details={"reason": "missing", "field": file_field})


def params_from_form(form: FormData, *, area: str, skip: tuple[str, ...]) -> dict[str, Any]:
    """A ``params`` JSON object, overridden by any plain form fields of the same name."""
    values: dict[str, Any] = {}
    raw = form.get("params")
    if isinstance(raw, str) and raw.strip():
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"params is not valid JSON ({exc.msg} at {exc.pos}).",
                               code=f"{area}_INVALID_PARAMS",
                               message_ja="params が正しい JSON ではありません。",
                               details={"field": "params"}) from None
        if not isinstance(parsed, dict):
            raise InvalidInput("params must be a JSON object.", code=f"{area}_INVALID_PARAMS",
                               message_ja="params は JSON オブジェクトで指定してください。",
                               details={"field": "params"})
        values.update(parsed)
    for name, value in form.multi_items():
        if name in ("params", *skip) or not isinstance(value, str):
            continue
        values[name] = value
    return values
