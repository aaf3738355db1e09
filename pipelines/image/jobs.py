"""The queued ``image.process`` job: detect, cut out, refine and frame a stored photo.

Params (all JSON): ``input_key`` (a decoded, validated image already in storage),
``operations`` (subset of OPERATIONS, in any order), ``output_format`` (png | webp | jpg),
``framing`` (FramingOptions fields; ``background_key`` for an uploaded background),
``person_ids``, ``sensitivity``. Artifacts: the RGBA cutout under
``processed/background_removal/`` and the result under ``processed/final/``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PIL import Image

from models.errors import InvalidInput
from pipelines.image import portrait as image_pipeline
from pipelines.image.framing import FramingOptions
from pipelines.media import decode_image, encode_image
from pipelines.tasks import JobContext, JobKind

OUTPUT_FORMATS = ("png", "webp", "jpg")
DEFAULT_OPERATIONS = list(image_pipeline.OPERATIONS)


def normalise_operations(operations: list[str] | None) -> list[str]:
    """Known operations in pipeline order; refinement needs a cutout to refine."""
    ops = [image_pipeline.FORMER_NAMES.get(op, op) for op in operations or DEFAULT_OPERATIONS]
    unknown = [op for op in ops if op not in image_pipeline.OPERATIONS]
    if unknown or not ops:
        raise InvalidInput(f"Unknown operations {unknown}; use {list(image_pipeline.OPERATIONS)}.",
                           code="IMAGE_INVALID_OPERATIONS",
                           message_ja=f"不明な処理 {unknown} です。",
                           details={"allowed": list(image_pipeline.OPERATIONS)})
    refinement = image_pipeline.REFINEMENT
    if refinement in ops and "background_removal" not in ops:
        raise InvalidInput(f"{refinement} needs background_removal.",
                           code="IMAGE_INVALID_OPERATIONS",
                           message_ja=f"{refinement} には background_removal が必要です。")
    return [op for op in image_pipeline.OPERATIONS if op in ops]


def framing_from_params(params: dict[str, Any], background: Image.Image | None) -> FramingOptions:
    raw = dict(params or {})
    raw.pop("background_key", None)
    known = {"aspect", "size", "padding", "background", "background_color", "background_id"}
    extra = set(raw) - known
    if extra:
        raise InvalidInput(f"Unknown framing options {sorted(extra)}.",
                           code="IMAGE_INVALID_FRAMING",
                           message_ja=f"不明な構図オプション {sorted(extra)} です。")
    return FramingOptions.parse({**raw, "background_image": background})


def estimate_seconds(width: int, height: int, operations: list[str]) -> float:
    """A rough CPU estimate for the 202 answer (measured by bench/image.py on 2 cores)."""
    mp = width * height / 1e6
    seconds = 0.5
    if "person_detection" in operations:
        seconds += 0.2 + 0.05 * mp
    if "background_removal" in operations:
        seconds += 0.2 + 0.05 * mp
    if image_pipeline.REFINEMENT in operations:
        seconds += 1.0 + 1.5 * min(mp, 1.0)
    if "framing" in operations:
        seconds += 0.3 + 0.2 * mp
    return round(seconds, 1)


def _encode(image: Image.Image, fmt: str) -> bytes:
    if fmt == "jpg" and image.mode == "RGBA":  # no alpha in JPEG: flatten onto white
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    return encode_image(image, fmt)


def process_image_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    operations = normalise_operations(params.get("operations"))
    fmt = str(params.get("output_format", "png")).lower().replace("jpeg", "jpg")
    if fmt not in OUTPUT_FORMATS:
        raise InvalidInput(f"Unsupported output format {fmt!r}.", code="IMAGE_INVALID_FORMAT",
                           message_ja=f"出力形式 {fmt!r} には対応していません。",
                           details={"allowed": list(OUTPUT_FORMATS)})
    framing_params = dict(params.get("framing") or {})
    background = None
    if framing_params.get("background_key"):
        background = decode_image(ctx.storage.get(framing_params["background_key"]))
    options = framing_from_params(framing_params, background)
    image = image_pipeline.working_image(decode_image(ctx.storage.get(params["input_key"])))
    # Steps this job does not do are dropped from the record at once.
    for op in image_pipeline.OPERATIONS:
        if op not in operations:
            ctx.step_done(op)

    reports = []
    ctx.progress(0.02, "person_detection")
    people, report = image_pipeline.detect(
        image, ctx.chain("person_detection"), sensitivity=float(params.get("sensitivity", image_pipeline.DEFAULT_SENSITIVITY)))
    chosen = image_pipeline.select(people, params.get("person_ids"))
    if "person_detection" in operations:
        reports.append(report)
        ctx.step_done("person_detection")

    matte = np.ones((image.height, image.width), np.float32)
    cutout_key = None
    if "background_removal" in operations:
        ctx.progress(0.15, "background_removal")
        matte, report = image_pipeline.cutout(image, chosen, ctx.chain("cutout"), people=people)
        reports.append(report)
        ctx.step_done("background_removal")
    if image_pipeline.REFINEMENT in operations:
        ctx.progress(0.4, image_pipeline.REFINEMENT)
        matte, report = image_pipeline.refine(image, matte, chosen, ctx.chain("refiner"))
        reports.append(report)
        ctx.step_done(image_pipeline.REFINEMENT)
    if "background_removal" in operations:
        cutout = image_pipeline.cutout_rgba(image, matte)
        cutout_key = ctx.storage.put(ctx.new_key("processed/background_removal", "png"),
                                     encode_image(cutout, "png"))
        output = cutout
    else:
        output = image
    face_box = None
    if "framing" in operations:
        ctx.progress(0.8, "framing")
        output, face_box, report = image_pipeline.frame_portrait(image, matte, chosen, options)
        reports.append(report)
        ctx.step_done("framing")
    ctx.progress(0.95, "store")
    output_key = ctx.storage.put(ctx.new_key("processed/final", fmt), _encode(output, fmt))
    ctx.progress(1.0, "store")
    return {
        "output_key": output_key,
        "cutout_key": cutout_key,
        "output_format": fmt,
        "width": output.width,
        "height": output.height,
        "face_box": list(face_box) if face_box else None,
        "people": [p.to_dict() for p in people],
        "selected": [p.id for p in chosen],
        "operations_applied": [
            {"operation": r.operation, "method": r.method, "duration": r.duration,
             "fallback_used": r.fallback_used, "details": r.details} for r in reports],
        "processing_time": round(time.perf_counter() - started, 3),
    }


JOB = JobKind("image.process", DEFAULT_OPERATIONS, handler=process_image_job)
