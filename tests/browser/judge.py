"""Looking at a video frame the way a person does for "pasted on": a hard straight edge
where the photo ends (the portrait a lighter rectangle on its blurred backdrop), and a pale
halo along the person's outline. Numbers from pixels only; the studio's code is not asked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from quality.measure import longest_run


def frame_of(video: Path, index: int = 0) -> np.ndarray:
    """Frame ``index`` of an mp4 as uint8 HxWx3 (the bundled ffmpeg decodes it)."""
    import imageio_ffmpeg
    from PIL import Image

    out = video.with_name(f"{video.stem}-frame{index}.png")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i",
                    str(video), "-vf", f"select=eq(n\\,{index})", "-frames:v", "1", str(out)],
                   check=True, timeout=120)
    return np.asarray(Image.open(out).convert("RGB"))


def _grey(rgb: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.GaussianBlur(grey, (0, 0), 1.0)  # codec noise is not an edge


def straight_seam(rgb: np.ndarray, step: float = 12.0, reach: int = 3
                  ) -> tuple[float, str, int]:
    """The longest straight edge across the frame: for every row (and column) boundary,
    the longest run of pixels along it where the brightness steps by more than ``step``
    grey levels between ``reach`` pixels on either side, as a share of the frame's width
    (height). A photo pasted on a backdrop ends in straight lines most of the frame long;
    a person's outline, a tie or a collar never stays on one row for long.
    Returns (share, "row" or "column", where)."""
    grey = _grey(rgb)
    best = (0.0, "row", 0)
    for axis, name in ((0, "row"), (1, "column")):
        g = grey if axis == 0 else grey.T
        n, length = g.shape
        for y in range(reach, n - reach):
            above = g[y - reach:y].mean(axis=0)
            below = g[y:y + reach].mean(axis=0)
            share = longest_run(np.abs(below - above) > step) / length
            if share > best[0]:
                best = (share, name, y)
    return best


def halo(rgb: np.ndarray, mask: np.ndarray, upper: float = 0.6) -> float:
    """How much brighter the backdrop is just outside the person's outline (2-8 px) than a
    little further out (14-30 px), in grey levels, over the top ``upper`` of the frame
    (head and shoulders against the backdrop). A pale halo along jaw, neck and shoulders
    reads as a clearly positive number; a clean cutout as about zero."""
    import cv2

    person = (mask > 0.5).astype(np.uint8)
    grey = _grey(rgb)

    def ring(inner: int, outer: int) -> np.ndarray:
        grow = lambda r: cv2.dilate(person, cv2.getStructuringElement(  # noqa: E731
            cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        band = (grow(outer) > 0) & ~(grow(inner) > 0)
        band[int(upper * band.shape[0]):] = False
        return band

    near, far = ring(2, 8), ring(14, 30)
    if near.sum() < 200 or far.sum() < 200:
        return 0.0
    return float(grey[near].mean() - grey[far].mean())


def pasted_on(photo: np.ndarray, size: tuple[int, int], share: float = 0.8) -> np.ndarray:
    """What "pasted on" looks like: the photo, cropped to the frame's shape, at ``share`` of
    the frame, centred on a blurred, darkened copy of itself (the control the judge must
    catch; the built-in talking head made this of a 9:16 portrait whose face was large)."""
    import cv2
    from PIL import Image, ImageOps

    w, h = size
    full = np.asarray(ImageOps.fit(Image.fromarray(photo), (w, h)))
    back = cv2.GaussianBlur(full, (0, 0), max(w, h) / 40)
    frame = (back.astype(np.float32) * 0.7).astype(np.uint8)
    sw, sh = int(w * share), int(h * share)
    small = cv2.resize(full, (sw, sh), interpolation=cv2.INTER_AREA)
    top, left = (h - sh) // 2, (w - sw) // 2
    frame[top:top + sh, left:left + sw] = small
    return frame
