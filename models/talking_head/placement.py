"""Placing a portrait in the output frame: the face's size and height for each aspect ratio.

Why apart from the rig: placement runs once per photo and output size, before anything is
rigged; the rig only ever sees the placed frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Framing:
    """Where the face lands in the output: face height and centre as fractions of H."""

    face_height: float
    center_y: float


CROWN_SHARE = 0.5  # top of the head above the forehead point, in forehead-to-chin lengths
HEAD_MARGIN = 0.03  # of the frame's height, above the crown


def framing_for(size: tuple[int, int]) -> Framing:
    w, h = size
    if h > w * 1.2:  # 9:16
        return Framing(0.30, 0.40)
    if w > h * 1.2:  # 16:9
        return Framing(0.50, 0.47)
    return Framing(0.46, 0.47)


def frame_portrait(rgb: np.ndarray, points: np.ndarray, size: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Scale and place the portrait so the face sits where ``size`` wants it.

    Where the scaled photo does not cover the frame, a blurred, darkened copy of it fills
    the rest (never stretched edge pixels). Returns the base frame and the moved landmarks.
    """
    import cv2

    w, h = size
    fr = framing_for(size)
    face_h = float(np.linalg.norm(points[10] - points[152]))
    center = (points[10] + points[152]) / 2
    scale = fr.face_height * h / face_h
    ih, iw = rgb.shape[:2]
    cover = max(w / iw, h / ih)
    # A photo that would need padding is zoomed in a little rather than padded a lot.
    scale = max(scale, 0.8 * cover) if scale < cover else scale

    def placed(scale: float) -> tuple[float, float]:
        """The face centred where the framing puts it, the photo slid to cover the frame
        where it can."""
        tx = w / 2 - center[0] * scale
        ty = fr.center_y * h - center[1] * scale
        sw, sh = iw * scale, ih * scale
        if sw >= w:
            tx = min(0.0, max(w - sw, tx))
        if sh >= h:
            ty = min(0.0, max(h - sh, ty))
        return tx, ty

    tx, ty = placed(scale)
    # The whole head stays in the frame when the photo shows it: the crown (hair included,
    # estimated above the mesh's forehead point) keeps a margin below the top edge. Sliding
    # the photo up to cover the frame, or a face share meant for a close-up, put the top of
    # the head outside a 16:9 frame although the photo had room above it.
    crown = float(points[10, 1]) - CROWN_SHARE * face_h
    if crown >= 0:
        margin = HEAD_MARGIN * h
        chin = float(points[152, 1]) + 0.12 * face_h
        fit = (h - margin) / max(chin - crown, 1.0)  # crown to just under the chin
        if scale > fit:
            scale = fit
            tx, ty = placed(scale)
        top = crown * scale + ty
        if top < margin:
            ty += margin - top
    m = np.array([[scale, 0, tx], [0, scale, ty]], dtype=np.float64)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    base = cv2.warpAffine(rgb, m, (w, h), flags=interp, borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(np.full((ih, iw), 255, np.uint8), m, (w, h), flags=cv2.INTER_LINEAR)
    if inside.min() < 255:
        bscale = cover * 1.05
        bm = np.array([[bscale, 0, w / 2 - iw * bscale / 2], [0, bscale, h / 2 - ih * bscale / 2]])
        back = cv2.warpAffine(rgb, bm, (w, h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
        # Blurred by max(w, h)/40 px: blur at 1/8 size, then scale up (the full-size sigma-32
        # blur of 720x1280 took ~0.9 s; this takes milliseconds and looks the same).
        k = 8
        small = cv2.resize(back, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), max(w, h) / 40 / k)
        back = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        back = (back.astype(np.float32) * 0.7).astype(np.uint8)
        alpha = cv2.GaussianBlur(cv2.erode(inside, np.ones((5, 5), np.uint8)), (0, 0), 2.0)
        alpha = (alpha.astype(np.float32) / 255.0)[..., None]
        base = (base * alpha + back * (1 - alpha)).astype(np.uint8)
    moved = points * scale + np.array([tx, ty])
    return base, moved
