"""Framing a cut-out person for a talking-head video: an upper-body crop with the face centred
and the eyes at ~40% of the height, an aspect preset, optional padding and a background.

Plain functions over PIL images and numpy mattes; the backgrounds the project ships live in
``assets/backgrounds`` (``manifest.json`` lists them; ``generate.py`` made them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from PIL import Image, ImageColor, ImageFilter, ImageOps
from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.errors import InvalidInput
from pipelines.options import parse

Box = tuple[int, int, int, int]
Eyes = tuple[tuple[float, float], tuple[float, float]]  # the eye centres, source pixels
BACKGROUNDS_DIR = Path(__file__).resolve().parents[2] / "assets" / "backgrounds"
ASPECTS: dict[str, tuple[int, int]] = {"1:1": (1, 1), "9:16": (9, 16), "16:9": (16, 9)}
# How much of the frame's height the face takes, per aspect (tall frames show more body).
FACE_SHARE = {"1:1": 0.30, "9:16": 0.22, "16:9": 0.34}
FACE_SHARE_MAX = {"1:1": 0.42, "9:16": 0.27, "16:9": 0.46}
"""The largest share of the height the face box may take when the frame zooms in to the
photo's bottom edge. The built-in talking head places the face (forehead to chin, about
1.05 face boxes) at 0.46 / 0.30 / 0.50 of the height and shrinks a portrait whose face is
bigger, filling the rest with a blurred copy: a 9:16 head-and-shoulders photo zoomed in to
its bottom came out as a pasted-on rectangle. Beyond this share the frame runs on below the
photo instead, and the body fades into the backdrop (:func:`_bottom_fade`)."""
EYE_LINE = 0.40
CROWN_ABOVE_EYES = 0.95  # top of the head (hair included) above the eyes, in face heights
HEAD_MARGIN = 0.03  # of the content's height, kept above the crown
MIN_SIZE, MAX_SIZE, MAX_PADDING = 128, 2048, 500


Aspect = Literal["1:1", "9:16", "16:9"]
BackgroundKind = Literal["transparent", "solid", "blur", "builtin", "upload"]
BACKGROUND_KINDS: tuple[str, ...] = get_args(BackgroundKind)
MESSAGES = {
    "aspect": ("Unknown aspect {value}; use 1:1, 9:16 or 16:9.",
               "アスペクト比は 1:1・9:16・16:9 から選んでください。"),
    "size": ("Size must be {low}-{high} px.", "サイズは {low}〜{high} px にしてください。"),
    "padding": ("Padding must be 0-{high} px.", "余白は 0〜{high} px にしてください。"),
    "background": ("Unknown background {value}.", "背景の種類 {value} はありません。"),
}


def _invalid(message: str, message_ja: str, **details: object) -> InvalidInput:
    return InvalidInput(message, code="IMAGE_INVALID_FRAMING", message_ja=message_ja,
                        details=details)


class FramingOptions(BaseModel):
    """How to frame. ``size`` is the long side in pixels (1:1 default 512x512). Built from
    a caller's values with :meth:`parse` (``IMAGE_INVALID_FRAMING`` naming the bad one)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    aspect: Aspect = "1:1"
    size: int = Field(default=512, ge=MIN_SIZE, le=MAX_SIZE)
    padding: int = Field(default=0, ge=0, le=MAX_PADDING)
    background: BackgroundKind = "transparent"
    background_color: str = "#ffffff"
    background_id: str | None = None
    background_image: Image.Image | None = None

    @property
    def canvas(self) -> tuple[int, int]:
        aw, ah = ASPECTS[self.aspect]
        if aw >= ah:
            return self.size, max(int(round(self.size * ah / aw)), 1)
        return max(int(round(self.size * aw / ah)), 1), self.size

    @model_validator(mode="after")
    def _fits(self) -> FramingOptions:
        width, height = self.canvas
        if min(width, height) - 2 * self.padding < 32:
            raise _invalid(f"Padding {self.padding} px leaves no room in a {width}x{height} frame.",
                           f"余白 {self.padding} px が {width}x{height} の枠に対して大きすぎます。",
                           field="padding")
        if self.background == "solid":
            try:
                ImageColor.getrgb(self.background_color)
            except ValueError:
                raise _invalid(f"Unreadable colour {self.background_color!r}.",
                               f"色 {self.background_color!r} を読めません。",
                               field="background_color") from None
        if self.background == "builtin":
            _builtin_entry(self.background_id or "")
        if self.background == "upload" and self.background_image is None:
            raise _invalid("Background 'upload' needs a background image.",
                           "背景画像をアップロードしてください。", field="background_image")
        return self

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> FramingOptions:
        """Options from a form, JSON or the UI; the first bad one raises
        ``IMAGE_INVALID_FRAMING``."""
        return parse(cls, raw, code="IMAGE_INVALID_FRAMING", messages=MESSAGES)


@lru_cache(maxsize=1)
def builtin_backgrounds() -> tuple[dict[str, object], ...]:
    """The shipped backgrounds' manifest entries."""
    path = BACKGROUNDS_DIR / "manifest.json"
    if not path.is_file():
        return ()
    return tuple(json.loads(path.read_text(encoding="utf-8")))


def _builtin_entry(background_id: str) -> dict[str, object]:
    for entry in builtin_backgrounds():
        if entry["id"] == background_id:
            return entry
    raise _invalid(f"Unknown built-in background {background_id!r}.",
                   f"内蔵背景 {background_id!r} はありません。",
                   allowed=[e["id"] for e in builtin_backgrounds()])


def builtin_background(background_id: str) -> Image.Image:
    entry = _builtin_entry(background_id)
    return Image.open(BACKGROUNDS_DIR / str(entry["file"])).convert("RGB")


def anchor(face: Box | None, eyes: Eyes | None, person: Box) -> tuple[float, float, float]:
    """Horizontal centre, eye line and face height (source pixels) to frame around."""
    if face is not None:
        fx0, fy0, fx1, fy1 = face
        face_h = float(max(fy1 - fy0, 1))
        if eyes:
            return (eyes[0][0] + eyes[1][0]) / 2, (eyes[0][1] + eyes[1][1]) / 2, face_h
        return (fx0 + fx1) / 2, fy0 + 0.4 * face_h, face_h
    px0, py0, px1, py1 = person  # no face seen: assume a head at the top of the person box
    face_h = max((py1 - py0) * 0.2, 1.0)
    return (px0 + px1) / 2, py0 + 0.55 * face_h, face_h


def layout(options: FramingOptions, face: Box | None, eyes: Eyes | None, person: Box, *,
           span: float = 0.0, source_height: int | None = None,
           ) -> tuple[float, float, float, int, int, int]:
    """Scale (source px per output px), source x/y of the content's top-left, content w/h,
    padding.

    The content (the canvas less ``padding`` at the top, left and right; the body runs on to
    the bottom edge as in any head-and-shoulders shot) shows the face at FACE_SHARE of the
    height, centred, eyes at EYE_LINE. ``span`` (source px) must fit across 90% of the width
    (several people). When the person reaches the photo's bottom edge, the frame zooms in
    rather than show the empty space below the photo, but never so far that the top of a
    head the photo shows leaves the frame.
    """
    width, height = options.canvas
    pad = options.padding
    cw, ch = width - 2 * pad, height - pad
    cx, eye_y, face_h = anchor(face, eyes, person)
    scale = face_h / FACE_SHARE[options.aspect] / (height - 2 * pad)
    if span > 0:
        scale = max(scale, span / (0.9 * cw))
    if source_height is not None and person[3] >= source_height - max(2, 0.01 * source_height):
        room = (source_height - eye_y) / ((1 - EYE_LINE) * ch)
        if room > 0:
            largest = face_h / FACE_SHARE_MAX[options.aspect] / (height - 2 * pad)
            scale = min(scale, max(room, largest))
    # The whole head, whenever the photo shows it: that zoom (or a span) must not push the
    # crown (hair included, estimated above the eyes) past the top edge; a photo that cuts
    # the head itself is framed as before.
    crown = eye_y - CROWN_ABOVE_EYES * face_h
    if crown >= 0:
        scale = max(scale, (eye_y - crown) / max((EYE_LINE - HEAD_MARGIN) * ch, 1.0))
    return scale, cx - cw * scale / 2, eye_y - EYE_LINE * ch * scale, cw, ch, pad


def _sample(rgba: np.ndarray, scale: float, x0: float, y0: float, out_w: int, out_h: int,
            replicate: bool, reflect: bool = False) -> np.ndarray:
    """Resample a region of ``rgba`` (float32 HxWxC) onto an out_h x out_w grid; beyond its
    edges: transparent, the edge pixels repeated (``replicate``) or mirrored (``reflect``)."""
    import cv2

    src = rgba
    if scale > 1.5:  # prefilter: area-average before the affine map, so no aliasing
        factor = scale
        src = cv2.resize(rgba, (max(int(rgba.shape[1] / factor), 1),
                                max(int(rgba.shape[0] / factor), 1)),
                         interpolation=cv2.INTER_AREA)
        sx = rgba.shape[1] / src.shape[1]
        sy = rgba.shape[0] / src.shape[0]
        matrix = np.array([[scale / sx, 0, x0 / sx], [0, scale / sy, y0 / sy]], np.float64)
    else:
        matrix = np.array([[scale, 0, x0], [0, scale, y0]], np.float64)
    border = cv2.BORDER_REFLECT if reflect else (
        cv2.BORDER_REPLICATE if replicate else cv2.BORDER_CONSTANT)
    return cv2.warpAffine(src, matrix, (out_w, out_h),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border,
                          borderValue=0)


def background_plate(rgb: np.ndarray, alpha: np.ndarray, side: int = 256) -> np.ndarray:
    """The photo with the person painted out from the background around them (OpenCV's
    Telea inpainting at <= ``side`` px, scaled back up: it is only ever seen blurred)."""
    import cv2

    h, w = alpha.shape
    k = min(1.0, side / max(h, w))
    size = (max(int(round(w * k)), 1), max(int(round(h * k)), 1))
    small = cv2.resize((np.clip(rgb, 0, 1) * 255).astype(np.uint8), size,
                       interpolation=cv2.INTER_AREA)
    person = cv2.resize(alpha.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.1
    mask = cv2.dilate(person.astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
    if mask.all():  # nothing but person: nothing to paint from
        return rgb
    filled = cv2.inpaint(small, mask, 7, cv2.INPAINT_TELEA)
    return cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0


def _bottom_fade(source_height: int, sy0: float, scale: float, rows: int) -> np.ndarray:
    """A column of weights (rows x 1 x 1) that fades the person out just above the photo's
    bottom edge when the frame runs on below it: the body ended in a hard line across the
    waist, over a backdrop that went on. All ones when the photo reaches the frame's bottom."""
    edge = (source_height - sy0) / scale  # the photo's last row, in content rows
    weights = np.ones((rows, 1, 1), np.float32)
    if edge >= rows - 1:
        return weights
    fade = max(8.0, 0.08 * rows)
    y = np.arange(rows, dtype=np.float32) + 0.5
    ramp = np.clip((edge - y) / fade, 0.0, 1.0)
    weights[:, 0, 0] = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no visible band
    return weights


def frame(image: Image.Image, alpha: np.ndarray, foreground: np.ndarray, *,
          face: Box | None, eyes: Eyes | None, person: Box,
          options: FramingOptions, span: float = 0.0) -> tuple[Image.Image, Box | None]:
    """Compose the framed portrait. ``foreground`` is float HxWx3 in [0, 1] (halo-free
    colours), ``alpha`` float HxW. Returns the image (RGBA when the background is transparent,
    else RGB) and the face box in output pixels (None when no face was seen)."""
    width, height = options.canvas
    scale, sx0, sy0, cw, ch, pad = layout(options, face, eyes, person, span=span,
                                          source_height=alpha.shape[0])
    premult = np.dstack([foreground * alpha[..., None], alpha]).astype(np.float32)
    layer = _sample(premult, scale, sx0, sy0, cw, ch, replicate=False)
    a = np.clip(layer[..., 3:4], 0.0, 1.0)
    colour = np.where(a > 1e-4, layer[..., :3] / np.maximum(a, 1e-4), 0.0)
    colour = np.clip(colour, 0.0, 1.0)

    canvas = np.zeros((height, width, 4), np.float32)
    if options.background == "solid":
        canvas[..., :3] = np.array(ImageColor.getrgb(options.background_color)[:3]) / 255.0
        canvas[..., 3] = 1.0
    elif options.background == "blur":
        rgb = np.asarray(image.convert("RGB"), np.float32) / 255.0
        bx0, by0 = sx0 - pad * scale, sy0 - pad * scale
        # The backdrop is the photo's own background with the person painted out, inside
        # the photo and beyond it alike. Blurring the photo itself spread the person into
        # it: a pale glow along hair, jaw and shoulders, and a lighter rectangle where the
        # photo met its painted-out extension.
        # Beyond the photo the background is mirrored: its edge row repeated made streaks.
        plate = _sample(background_plate(rgb, alpha), scale, bx0, by0, width, height,
                        replicate=True, reflect=True)
        blurred = Image.fromarray(np.clip(plate * 255, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(max(width, height) * 0.025))
        canvas[..., :3] = np.asarray(blurred, np.float32) / 255.0
        canvas[..., 3] = 1.0
    elif options.background in ("builtin", "upload"):
        if options.background == "builtin":
            bg = builtin_background(options.background_id or "")
        else:
            if options.background_image is None:  # FramingOptions' own check refuses this
                raise ValueError("an uploaded background needs its image")
            bg = options.background_image.convert("RGB")
        fitted = ImageOps.fit(bg, (width, height), Image.Resampling.LANCZOS)
        canvas[..., :3] = np.asarray(fitted, np.float32) / 255.0
        canvas[..., 3] = 1.0

    if options.background != "transparent":
        a = a * _bottom_fade(alpha.shape[0], sy0, scale, ch)

    region = canvas[pad:pad + ch, pad:pad + cw]  # padding: top, left and right
    out_a = a + region[..., 3:4] * (1 - a)
    out_rgb = (colour * a + region[..., :3] * region[..., 3:4] * (1 - a)) / np.maximum(out_a, 1e-6)
    region[..., :3] = np.where(out_a > 1e-6, out_rgb, 0.0)
    region[..., 3:4] = out_a
    pixels = np.clip(canvas * 255.0 + 0.5, 0, 255).astype(np.uint8)
    result = Image.fromarray(pixels, "RGBA")
    if options.background != "transparent":
        result = result.convert("RGB")

    face_out = None
    if face is not None:
        fx0, fy0, fx1, fy1 = face
        face_out = (int(round((fx0 - sx0) / scale + pad)), int(round((fy0 - sy0) / scale + pad)),
                    int(round((fx1 - sx0) / scale + pad)), int(round((fy1 - sy0) / scale + pad)))
    return result, face_out
