"""Finding people in a photo, cutting one out and framing it, and queuing that work: for
the REST routes (``/api/image/*``) and the Image tab alike.

The doors read the upload and show the answer; everything between (decoding, checking each
option before anything is queued, the engines) happens here."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from app.runner.jobs import Job, Jobs
from app.runner.queue import TaskQueue
from app.storage import Storage, new_key
from app.usecases.tasks import owned_task, progress_fields
from models.chain import FallbackChain
from models.errors import InvalidInput, NotFound
from pipelines.image import portrait
from pipelines.image.framing import ASPECTS, BACKGROUND_KINDS, FramingOptions, builtin_backgrounds
from pipelines.image.jobs import (
    OUTPUT_FORMATS,
    estimate_seconds,
    framing_from_params,
    normalise_operations,
)
from pipelines.media import decode_image, encode_image

KIND = "image.process"
DEFAULT_SENSITIVITY = portrait.DEFAULT_SENSITIVITY
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


@dataclass(frozen=True)
class Choices:
    """What the framing controls offer (the tab's radios and dropdowns)."""

    aspects: tuple[str, ...]
    background_kinds: tuple[str, ...]
    backgrounds: tuple[dict[str, object], ...]


def choices() -> Choices:
    return Choices(tuple(ASPECTS), tuple(BACKGROUND_KINDS), builtin_backgrounds())


def backgrounds() -> list[dict[str, Any]]:
    """The shipped backgrounds, as ``GET /api/image/backgrounds`` lists them."""
    return [{"id": e["id"], "name": e["name"], "name_ja": e["name_ja"]}
            for e in builtin_backgrounds()]


def load_picture(data: bytes, filename: str | None = None) -> Image.Image:
    """The upload as an upright sRGB picture, or an ``IMAGE_*`` error."""
    return decode_image(data, filename=filename)


@dataclass(frozen=True)
class Detection:
    """The people found, a thumbnail of each (same order), and how they were found."""

    people: list[dict[str, Any]]
    thumbnails: list[Image.Image]
    operation: dict[str, Any]


def detect_people(picture: Image.Image, detectors: FallbackChain[Any],
                  sensitivity: float) -> Detection:
    people, report = portrait.detect(picture, detectors, sensitivity=sensitivity)
    return Detection([p.to_dict() for p in people], [portrait.thumbnail(picture, p)
                                                      for p in people],
                     {"operation": report.operation, "method": report.method,
                      "duration": report.duration})


def detection_answer(storage: Storage, picture: Image.Image,
                     detection: Detection) -> dict[str, Any]:
    """REST's answer: each thumbnail stored and linked."""
    listed = []
    for person, thumb in zip(detection.people, detection.thumbnails, strict=True):
        key = storage.put(new_key("processed/thumbnails", "png"), encode_image(thumb, "png"))
        listed.append({**person, "thumbnail_url": storage.url(key)})
    return {"people": listed, "width": picture.width, "height": picture.height,
            "default_selection": [detection.people[0]["id"]],
            "operation": detection.operation}


@dataclass(frozen=True)
class Portrait:
    """A cutout made in the request (the Image tab): the framed picture, the cutout with its
    transparency, the first person chosen (for the edge close-up) and each step's report."""

    framed: Image.Image
    cutout: Image.Image
    face_bbox: tuple[int, int, int, int] | None
    bbox: tuple[int, int, int, int]
    reports: list[dict[str, Any]]


def framing_options(raw: dict[str, Any]) -> FramingOptions:
    """The framing, checked (``background_image``: a decoded picture for ``upload``)."""
    return FramingOptions.parse(raw)


def make_portrait(picture: Image.Image, *, detectors: FallbackChain[Any],
                  cutouts: FallbackChain[Any], refiners: FallbackChain[Any] | None,
                  framing: FramingOptions, person_ids: list[int] | None,
                  sensitivity: float) -> Portrait:
    """Detect, cut out, refine (``refiners``) and frame, in the request (the Image tab)."""
    result = portrait.prepare_portrait(
        picture, detectors=detectors, cutout_chain=cutouts, refiner_chain=refiners,
        options=framing, person_ids=person_ids, sensitivity=sensitivity)
    first = result.selected[0]
    reports = [{"operation": r.operation, "method": r.method, "duration": r.duration,
                "fallback_used": r.fallback_used,
                **({"note": r.details["note"]} if "note" in r.details else {})}
               for r in result.reports]
    return Portrait(result.image, portrait.cutout_rgba(picture, result.matte),
                    first.face_bbox, first.bbox, reports)


def output_format(name: str) -> str:
    fmt = name.lower().replace("jpeg", "jpg")
    if fmt not in OUTPUT_FORMATS:
        raise InvalidInput(f"Unsupported output format {name!r}.",
                           code="IMAGE_INVALID_FORMAT",
                           message_ja=f"出力形式 {name!r} には対応していません。",
                           details={"allowed": list(OUTPUT_FORMATS)})
    return fmt


def check_request(operations: list[Any] | None, fmt: str,
                  sensitivity: float) -> tuple[list[str], str]:
    """The operations and output format, checked before any upload is read."""
    ops = normalise_operations(operations)
    fmt = output_format(fmt)
    portrait.validate_sensitivity(sensitivity)
    return ops, fmt


def submit_processing(storage: Storage, queue: TaskQueue, *, picture: Image.Image,
                      data: bytes,
                      background: tuple[bytes, str] | None, ops: list[str], fmt: str,
                      framing: dict[str, Any], person_ids: list[int] | None,
                      sensitivity: float, owner: str | None) -> dict[str, Any]:
    """Decode the background, check the framing, store the inputs (``data``: the photo
    ``picture`` was decoded from), queue the job: a bad file or option is refused before
    anything is queued."""
    bg_picture = None
    if background is not None:
        bg_picture = decode_image(background[0], filename=background[1])
    framing_from_params(framing, bg_picture)  # every option checked before queueing
    input_key = storage.put(new_key("inputs/images", _format_of(data)), data)
    framing = dict(framing)
    if background is not None:
        framing["background_key"] = storage.put(
            new_key("inputs/images", _format_of(background[0])), background[0])
    job = queue.submit(KIND, {
        "input_key": input_key, "operations": ops, "output_format": fmt,
        "framing": framing, "person_ids": person_ids, "sensitivity": sensitivity,
    }, owner=owner)
    return {"task_id": job.id, "status": job.status,
            "estimated_time": estimate_seconds(picture.width, picture.height, ops),
            "status_url": f"/api/image/status/{job.id}", "operations": ops}


def status_view(storage: Storage, jobs: Jobs, task_id: str,
                owns: Callable[[str | None], bool] = lambda owner: True) -> dict[str, Any]:
    """The task as the seed's status answer; someone else's task (``owns`` says no) is
    ``IMAGE_TASK_NOT_FOUND`` like a missing one."""
    job: Job = owned_task(jobs, task_id, KIND, owns, lambda: NotFound(
        f"No image task {task_id!r}.", code="IMAGE_TASK_NOT_FOUND",
        message_ja=f"画像タスク {task_id!r} が見つかりません。"))
    data = progress_fields(job)
    result = job.result or {}
    if job.status == "completed":
        data["output_url"] = storage.url(result["output_key"])
        if result.get("cutout_key"):
            data["cutout_url"] = storage.url(result["cutout_key"])
        for key in ("processing_time", "operations_applied", "output_format", "width",
                    "height", "face_box", "people", "selected"):
            data[key] = result.get(key)
    if job.error:
        data["error"] = job.error
    return data


def _format_of(data: bytes) -> str:
    """The stored extension for bytes ``decode_image`` already accepted."""
    with Image.open(io.BytesIO(data)) as probe:
        return EXTENSIONS.get(probe.format or "", "png")
