"""Image helpers every person-image engine shares: a picture as uint8 RGB, a person's box with
a margin, and running a whole-image matting model on that box only.

Engines of several capabilities (cutout, refinement, person detection) use them, so they live
apart from any one engine.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

Box = tuple[int, int, int, int]
CROP_PAD = 0.15  # of the box size, each side


def rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """PIL image or array -> contiguous uint8 HxWx3."""
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr[..., :3])


def padded_box(box: Box, width: int, height: int, pad: float = CROP_PAD) -> Box:
    """``box`` grown by ``pad`` of its size on each side, clipped to the image."""
    x0, y0, x1, y1 = box
    px, py = (x1 - x0) * pad, (y1 - y0) * pad
    return (max(int(x0 - px), 0), max(int(y0 - py), 0),
            min(int(x1 + px), width), min(int(y1 + py), height))


def matte_in_box(image: Image.Image | np.ndarray, box: Box | None,
                 predict: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Run a whole-image matting model on the (padded) person box only; zeros elsewhere."""
    rgb = rgb_array(image)
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = padded_box(box, w, h) if box else (0, 0, w, h)
    matte = np.zeros((h, w), np.float32)
    if x1 - x0 >= 4 and y1 - y0 >= 4:
        matte[y0:y1, x0:x1] = predict(rgb[y0:y1, x0:x1])
    return matte
