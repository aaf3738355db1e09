"""`/api/image/*`: detect people (sync), process a photo (queued), poll its status.

Uploads are decoded and validated here, before anything is queued, so a bad file is a 4xx
answer at once; the job receives only storage keys.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from PIL import Image

from app.api.envelope import ok
from app.api.security import owner_of, principal
from app.api.task_view import owned_task, progress_fields
from app.services import Services
from app.storage import new_key
from models.errors import InvalidInput, NotFound
from pipelines.image import portrait as image_pipeline
from pipelines.image.framing import builtin_backgrounds
from pipelines.image.jobs import (
    OUTPUT_FORMATS,
    estimate_seconds,
    framing_from_params,
    normalise_operations,
)
from pipelines.media import LIMITS, decode_image, encode_image

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


async def read_upload(upload: UploadFile | None, field: str = "image") -> tuple[bytes, str]:
    """The upload's bytes (at most the limit + 1, so an oversized file is refused without
    reading all of it) and the extension its content says it has."""
    if upload is None:
        raise InvalidInput(f"Missing file field '{field}'.", code="IMAGE_MISSING",
                           message_ja=f"ファイル '{field}' がありません。", details={"field": field})
    data = await upload.read(LIMITS.image_max_bytes + 1)
    return data, upload.filename or field


def _json_list(raw: str | None, field: str) -> list[Any] | None:
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, int | str):
        value = [value]
    if not isinstance(value, list):
        raise InvalidInput(f"'{field}' must be a JSON list.", code="VALIDATION_ERROR",
                           message_ja=f"'{field}' は JSON の配列にしてください。",
                           details={"field": field})
    return value


def _person_ids(raw: str | None) -> list[int] | None:
    values = _json_list(raw, "person_ids")
    if values is None:
        return None
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidInput("'person_ids' must be a list of integers.",
                           code="IMAGE_INVALID_SELECTION",
                           message_ja="'person_ids' は整数の配列にしてください。") from None


def status_view(services: Services, task_id: str,
                owns: Callable[[str | None], bool] = lambda owner: True) -> dict[str, Any]:
    """The task as the seed's status answer; someone else's task (``owns`` says no) is
    ``IMAGE_TASK_NOT_FOUND`` like a missing one."""
    job = owned_task(services, task_id, "image.process", owns, lambda: NotFound(
        f"No image task {task_id!r}.", code="IMAGE_TASK_NOT_FOUND",
        message_ja=f"画像タスク {task_id!r} が見つかりません。"))
    data = progress_fields(job)
    result = job.result or {}
    if job.status == "completed":
        data["output_url"] = services.storage.url(result["output_key"])
        if result.get("cutout_key"):
            data["cutout_url"] = services.storage.url(result["cutout_key"])
        for key in ("processing_time", "operations_applied", "output_format", "width",
                    "height", "face_box", "people", "selected"):
            data[key] = result.get(key)
    if job.error:
        data["error"] = job.error
    return data


def create_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/api/image", tags=["image"])

    @router.post("/detect")
    async def detect(image: UploadFile | None = File(None),
                     sensitivity: float = Form(image_pipeline.DEFAULT_SENSITIVITY)
                     ) -> JSONResponse:
        data, name = await read_upload(image)
        picture = decode_image(data, filename=name)
        people, report = image_pipeline.detect(
            picture, services.chain("person_detection"), sensitivity=sensitivity)
        listed = []
        for person in people:
            key = services.storage.put(
                new_key("processed/thumbnails", "png"),
                encode_image(image_pipeline.thumbnail(picture, person), "png"))
            listed.append({**person.to_dict(), "thumbnail_url": services.storage.url(key)})
        return ok({"people": listed, "width": picture.width, "height": picture.height,
                   "default_selection": [people[0].id],
                   "operation": {"operation": report.operation, "method": report.method,
                                 "duration": report.duration}})

    @router.post("/process", status_code=202)
    async def process(
        request: Request,
        image: UploadFile | None = File(None),
        operations: str | None = Form(None),
        output_format: str = Form("png"),
        aspect: str = Form("1:1"),
        size: int = Form(512),
        padding: int = Form(0),
        background: str = Form("transparent"),
        background_color: str = Form("#ffffff"),
        background_id: str | None = Form(None),
        background_image: UploadFile | None = File(None),
        person_ids: str | None = Form(None),
        sensitivity: float = Form(image_pipeline.DEFAULT_SENSITIVITY),
    ) -> JSONResponse:
        ops = normalise_operations(_json_list(operations, "operations"))
        fmt = output_format.lower().replace("jpeg", "jpg")
        if fmt not in OUTPUT_FORMATS:
            raise InvalidInput(f"Unsupported output format {output_format!r}.",
                               code="IMAGE_INVALID_FORMAT",
                               message_ja=f"出力形式 {output_format!r} には対応していません。",
                               details={"allowed": list(OUTPUT_FORMATS)})
        image_pipeline.validate_sensitivity(sensitivity)
        ids = _person_ids(person_ids)
        data, name = await read_upload(image)
        picture = decode_image(data, filename=name)
        framing = {"aspect": aspect, "size": size, "padding": padding,
                   "background": background, "background_color": background_color,
                   "background_id": background_id}
        bg_picture = None
        if background == "upload":
            bg_data, bg_name = await read_upload(background_image, "background_image")
            bg_picture = decode_image(bg_data, filename=bg_name)
        framing_from_params(framing, bg_picture)  # every option checked before queueing
        fmt_in = _format_of(data)
        input_key = services.storage.put(new_key("inputs/images", fmt_in), data)
        if bg_picture is not None:
            framing["background_key"] = services.storage.put(
                new_key("inputs/images", _format_of(bg_data)), bg_data)
        job = services.queue.submit("image.process", {
            "input_key": input_key, "operations": ops, "output_format": fmt,
            "framing": framing, "person_ids": ids, "sensitivity": sensitivity,
        }, owner=owner_of(request))
        return ok({"task_id": job.id, "status": job.status,
                   "estimated_time": estimate_seconds(picture.width, picture.height, ops),
                   "status_url": f"/api/image/status/{job.id}",
                   "operations": ops}, status_code=202)

    @router.get("/status/{task_id}")
    def status(task_id: str, request: Request) -> JSONResponse:
        return ok(status_view(services, task_id, principal(request).owns))

    @router.get("/backgrounds")
    def backgrounds() -> JSONResponse:
        return ok({"backgrounds": [
            {"id": e["id"], "name": e["name"], "name_ja": e["name_ja"]}
            for e in builtin_backgrounds()]})

    return router


def _format_of(data: bytes) -> str:
    """The stored extension for bytes ``decode_image`` already accepted."""
    with Image.open(io.BytesIO(data)) as probe:
        return EXTENSIONS.get(probe.format or "", "png")
