"""The image pipeline as plain functions: find people, cut one (or several) out, refine the
matte, frame the portrait. Each step returns its value and a :class:`StageReport` named for
what it does (``person_detection``, ``background_removal``, ``matte_refinement``, ``framing``);
the report's ``method`` says which engine did it.

The one-click message pipeline calls :func:`prepare_portrait`; the REST job and the Image tab
call the steps one by one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from models.base import (
    MatteRefiner,
    PersonCutout,
    PersonDetection,
    ProgressFn,
    StageReport,
    no_progress,
)
from models.chain import ChainResult, FallbackChain
from models.errors import InvalidInput
from models.refine.closed_form import as_float_rgb, estimate_foreground
from pipelines.image.framing import FramingOptions, frame

Box = tuple[int, int, int, int]
REFINEMENT = "matte_refinement"
OPERATIONS = ("person_detection", "background_removal", REFINEMENT, "framing")
# Earlier names of the steps: requests and results stored before the rename still use them.
FORMER_NAMES = {"sam2_refinement": REFINEMENT}
DEFAULT_SENSITIVITY = 0.5
WORK_MAX_PIXELS = 16_000_000  # cutout and framing work at most at this size (output <= 2048 px)


def working_image(image: Image.Image, max_pixels: int = WORK_MAX_PIXELS) -> Image.Image:
    """``image`` shrunk to at most ``max_pixels`` (a 50 MP upload would need many GB of
    float buffers for matting; the framed output is at most 2048 px anyway)."""
    pixels = image.width * image.height
    if pixels <= max_pixels:
        return image
    scale = (max_pixels / pixels) ** 0.5
    return image.resize((max(int(image.width * scale), 1), max(int(image.height * scale), 1)),
                        Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class Person:
    """A detected person as the API and UI show it."""

    id: int
    bbox: Box
    confidence: float
    face_bbox: Box | None
    eyes: tuple[tuple[float, float], tuple[float, float]] | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "bbox": list(self.bbox), "confidence": self.confidence,
                "face_bbox": list(self.face_bbox) if self.face_bbox else None,
                "source": self.source}


@dataclass
class Portrait:
    """What :func:`prepare_portrait` gives back."""

    image: Image.Image  # framed; RGBA when the background is transparent, else RGB
    face_box: Box | None  # in the framed image's pixels
    matte: np.ndarray  # refined alpha of the selected people, source resolution
    people: list[Person]
    selected: list[Person]
    reports: list[StageReport] = field(default_factory=list)


def _report(operation: str, result: ChainResult[Any] | None, method: str, started: float,
            **details: Any) -> StageReport:
    if result is not None:
        details = {**result.report(), **details}
    return StageReport(operation, method, round(time.perf_counter() - started, 3),
                       bool(result.fallback_used) if result is not None else False, details)


# ---------------------------------------------------------------------------- detection


def validate_sensitivity(sensitivity: float) -> float:
    if not 0.1 <= float(sensitivity) <= 0.9:
        raise InvalidInput("Sensitivity must be between 0.1 and 0.9.",
                           code="IMAGE_INVALID_SENSITIVITY",
                           message_ja="検出感度は 0.1〜0.9 にしてください。",
                           details={"sensitivity": sensitivity})
    return float(sensitivity)


def detect(image: Image.Image, detectors: FallbackChain[PersonDetection], *,
           sensitivity: float = DEFAULT_SENSITIVITY) -> tuple[list[Person], StageReport]:
    """Every person in ``image``, largest face first. None found is ``IMAGE_NO_PERSON``."""
    started = time.perf_counter()
    sensitivity = validate_sensitivity(sensitivity)
    result = detectors.run(lambda engine: (engine.method, engine.detect(image, sensitivity)))
    method, found = result.value
    if not found:
        raise InvalidInput(
            "No person was found in the image. Try a photo where a face is visible, or raise "
            "the detection sensitivity.", code="IMAGE_NO_PERSON",
            message_ja="画像に人物が見つかりません。顔が写った写真を使うか、検出感度を上げてください。",
            details={"sensitivity": sensitivity})
    people = [Person(i, d.bbox, d.confidence, d.face_bbox, d.eyes, d.source)
              for i, d in enumerate(found)]
    report = StageReport("person_detection", method, round(time.perf_counter() - started, 3),
                         result.fallback_used, {"people": len(people), "sensitivity": sensitivity})
    return people, report


def select(people: Sequence[Person], ids: Sequence[int] | None = None) -> list[Person]:
    """The people to cut out: those named by id, else the largest face (people[0])."""
    if not ids:
        return [people[0]]
    by_id = {p.id: p for p in people}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise InvalidInput(f"No detected person with id {unknown}.",
                           code="IMAGE_INVALID_SELECTION",
                           message_ja=f"ID {unknown} の人物は検出されていません。",
                           details={"unknown": unknown, "known": sorted(by_id)})
    return [by_id[i] for i in dict.fromkeys(ids)]


def thumbnail(image: Image.Image, person: Person, size: int = 160) -> Image.Image:
    """A small picture of one person (their box plus a margin), for choosing."""
    x0, y0, x1, y1 = person.bbox
    mx, my = (x1 - x0) * 0.05, (y1 - y0) * 0.05
    crop = image.convert("RGB").crop((max(int(x0 - mx), 0), max(int(y0 - my), 0),
                                      min(int(x1 + mx), image.width),
                                      min(int(y1 + my), image.height)))
    crop.thumbnail((size, size), Image.Resampling.LANCZOS)
    return crop


# ------------------------------------------------------------------------------ cutout


def _nearest_face_mask(shape: tuple[int, int], keep: Sequence[Person],
                       others: Sequence[Person]) -> np.ndarray | None:
    """Pixels nearer to a kept person's face than to any other's (None: nothing to split)."""
    faces_keep = [p.face_bbox for p in keep if p.face_bbox]
    faces_other = [p.face_bbox for p in others if p.face_bbox]
    if not faces_other or not faces_keep:
        return None
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)

    def nearest(faces: list[Box]) -> np.ndarray:
        best = np.full(shape, np.inf, np.float32)
        for x0, y0, x1, y1 in faces:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            np.minimum(best, (xs - cx) ** 2 + (0.3 * (ys - cy)) ** 2, out=best)
        return best

    return nearest(faces_keep) <= nearest(faces_other)


def cutout(image: Image.Image, selected: Sequence[Person], chain: FallbackChain[PersonCutout],
           *,
           people: Sequence[Person] = ()) -> tuple[np.ndarray, StageReport]:
    """Soft alpha of the selected people (union), other detected people removed."""
    started = time.perf_counter()
    rgb = image.convert("RGB")
    h, w = rgb.height, rgb.width

    def run(engine: PersonCutout) -> np.ndarray:
        matte = np.zeros((h, w), np.float32)
        for person in selected:
            np.maximum(matte, np.asarray(engine.cutout(rgb, person.bbox), np.float32), out=matte)
        return matte

    result = chain.run(run)
    matte = np.clip(result.value, 0.0, 1.0)
    others = [p for p in people if p.id not in {s.id for s in selected}]
    split = _nearest_face_mask((h, w), selected, others)
    if split is not None:
        matte = np.where(split, matte, 0.0).astype(np.float32)
    return matte, _report("background_removal", result, result.backend, started,
                          people=[p.id for p in selected])


def refine(image: Image.Image, matte: np.ndarray, selected: Sequence[Person],
           chain: FallbackChain[MatteRefiner]) -> tuple[np.ndarray, StageReport]:
    """Refined matte; when no prompted refiner (SAM2) could run, the classical one does, and
    the report says so."""
    started = time.perf_counter()
    rgb = image.convert("RGB")
    xs0, ys0, xs1, ys1 = zip(*(p.bbox for p in selected), strict=True)
    box = (min(xs0), min(ys0), max(xs1), max(ys1))
    result = chain.run(lambda engine: engine.refine(rgb, matte, box))
    refined = np.clip(np.asarray(result.value, np.float32), 0.0, 1.0)
    details: dict[str, Any] = {}
    if not chain.get(result.backend).prompted:
        details["note"] = (f"SAM2 refinement was not available; the classical refiner "
                           f"({result.backend}) was used instead.")
    return refined, _report(REFINEMENT, result, result.backend, started, **details)


# ----------------------------------------------------------------------------- framing


def cutout_rgba(image: Image.Image, matte: np.ndarray) -> Image.Image:
    """RGBA cutout whose colours are the estimated foreground (no background halo)."""
    rgb = as_float_rgb(image).astype(np.float32)
    fg = estimate_foreground(rgb, matte)
    rgba = np.dstack([fg, matte]) * 255.0 + 0.5
    return Image.fromarray(np.clip(rgba, 0, 255).astype(np.uint8), "RGBA")


def frame_portrait(image: Image.Image, matte: np.ndarray, selected: Sequence[Person],
                   options: FramingOptions) -> tuple[Image.Image, Box | None, StageReport]:
    """Frame the selected people: face of the first (largest) one centred, eyes at 40%."""
    started = time.perf_counter()
    lead = selected[0]
    xs0, ys0, xs1, ys1 = zip(*(p.bbox for p in selected), strict=True)
    union = (min(xs0), min(ys0), max(xs1), max(ys1))
    face, eyes, span = lead.face_bbox, lead.eyes, 0.0
    faces = [p.face_bbox for p in selected if p.face_bbox]
    if len(faces) > 1:  # several people: centre on their faces, fit all of them across
        fx0, fx1 = min(f[0] for f in faces), max(f[2] for f in faces)
        mean_h = sum(f[3] - f[1] for f in faces) / len(faces)
        cy = sum((f[1] + f[3]) / 2 for f in faces) / len(faces)
        face = (int(fx0), int(cy - mean_h / 2), int(fx1), int(cy + mean_h / 2))
        eyes = None
        span = (fx1 - fx0) + 2.0 * mean_h
    rgb = as_float_rgb(image).astype(np.float32)
    fg = estimate_foreground(rgb, matte)
    framed, face_out = frame(image, matte, fg, face=face, eyes=eyes, person=union,
                             options=options, span=span)
    report = StageReport("framing", "upper_body_crop", round(time.perf_counter() - started, 3),
                         False, {"aspect": options.aspect, "size": list(framed.size),
                                 "padding": options.padding, "background": options.background,
                                 "face_box": list(face_out) if face_out else None})
    return framed, face_out, report


# ------------------------------------------------------------------- the one-call portrait


def prepare_portrait(
    image: Image.Image, *, cutout_chain: FallbackChain[PersonCutout],
    refiner_chain: FallbackChain[MatteRefiner] | None,
    options: FramingOptions | None = None, person_ids: Sequence[int] | None = None,
    detectors: FallbackChain[PersonDetection], sensitivity: float = DEFAULT_SENSITIVITY,
    progress: ProgressFn = no_progress,
) -> Portrait:
    """Photo -> framed portrait of the chosen person(s) and where the face is in it.

    ``refiner_chain`` None skips refinement. Raises ``IMAGE_NO_PERSON`` when nobody is found.
    """
    options = options or FramingOptions()
    image = working_image(image)
    progress(0.0, "person_detection")
    people, detected = detect(image, detectors, sensitivity=sensitivity)
    chosen = select(people, person_ids)
    progress(0.15, "background_removal")
    matte, removed = cutout(image, chosen, cutout_chain, people=people)
    reports = [detected, removed]
    if refiner_chain is not None:
        progress(0.45, REFINEMENT)
        matte, refined = refine(image, matte, chosen, refiner_chain)
        reports.append(refined)
    progress(0.85, "framing")
    framed, face_box, framed_report = frame_portrait(image, matte, chosen, options)
    reports.append(framed_report)
    progress(1.0, "framing")
    return Portrait(framed, face_box, matte, people, chosen, reports)
