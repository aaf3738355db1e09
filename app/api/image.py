"""`/api/image/*`: detect people (sync), process a photo (queued), poll its status.

Uploads are read here and decoded and validated by :mod:`app.usecases.image` before anything
is queued, so a bad file is a 4xx answer at once; the job receives only storage keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from app.api.envelope import ok
from app.api.schemas import (
    ERRORS,
    Backgrounds,
    Detection,
    Envelope,
    ImageAccepted,
    TaskStatus,
)
from app.api.security import owner_of, principal
from app.api.uploads import IMAGE_MAX_BYTES
from app.runner.jobs import Jobs
from app.runner.queue import TaskQueue
from app.storage import Storage
from app.usecases import image as images
from models.chain import FallbackChain
from models.errors import InvalidInput


async def read_upload(upload: UploadFile | None, field: str = "image") -> tuple[bytes, str]:
    """The upload's bytes (at most the limit + 1, so an oversized file is refused without
    reading all of it) and the extension its content says it has."""
    if upload is None:
        raise InvalidInput(f"Missing file field '{field}'.", code="IMAGE_MISSING",
                           message_ja=f"ファイル '{field}' がありません。", details={"field": field})
    data = await upload.read(IMAGE_MAX_BYTES + 1)
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


def create_router(storage: Storage, jobs: Jobs, queue: TaskQueue,
                  detectors: Callable[[], FallbackChain[Any]]) -> APIRouter:
    """The image routes over the store, the jobs, the queue and the person detectors
    (built on first use)."""
    router = APIRouter(prefix="/api/image", tags=["image"])

    @router.post("/detect", response_model=Envelope[Detection], responses=ERRORS)
    async def detect(image: UploadFile | None = File(None),
                     sensitivity: float = Form(images.DEFAULT_SENSITIVITY)
                     ) -> JSONResponse:
        data, name = await read_upload(image)
        picture = images.load_picture(data, name)
        found = images.detect_people(picture, detectors(), sensitivity)
        return ok(images.detection_answer(storage, picture, found))

    @router.post("/process", status_code=202, response_model=Envelope[ImageAccepted],
                 responses=ERRORS)
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
        sensitivity: float = Form(images.DEFAULT_SENSITIVITY),
    ) -> JSONResponse:
        ops, fmt = images.check_request(_json_list(operations, "operations"), output_format,
                                        sensitivity)
        ids = _person_ids(person_ids)
        data, name = await read_upload(image)
        picture = images.load_picture(data, name)  # a bad photo is said before the rest
        framing = {"aspect": aspect, "size": size, "padding": padding,
                   "background": background, "background_color": background_color,
                   "background_id": background_id}
        bg = await read_upload(background_image, "background_image") \
            if background == "upload" else None
        return ok(images.submit_processing(
            storage, queue, picture=picture, data=data, background=bg, ops=ops, fmt=fmt,
            framing=framing, person_ids=ids, sensitivity=sensitivity,
            owner=owner_of(request)), status_code=202)

    @router.get("/status/{task_id}", response_model=Envelope[TaskStatus], responses=ERRORS)
    def status(task_id: str, request: Request) -> JSONResponse:
        return ok(images.status_view(storage, jobs, task_id, principal(request).owns))

    @router.get("/backgrounds", response_model=Envelope[Backgrounds])
    def backgrounds() -> JSONResponse:
        return ok({"backgrounds": images.backgrounds()})

    return router
