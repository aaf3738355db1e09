"""What every part of the face rig shares: regions, smooth warp fields, one frame's
controls and the portrait's own axes.

Why: the mouth, the eyes and the head motion are built in their own modules (:mod:`mouth`,
:mod:`mouth_paint`, :mod:`face_rig`); they meet here, below all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    eased: np.ndarray = x * x * (3 - 2 * x)
    return eased


@dataclass(frozen=True)
class Roi:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @staticmethod
    def around(x0: float, y0: float, x1: float, y1: float, w: int, h: int) -> Roi:
        return Roi(int(max(0, np.floor(x0))), int(max(0, np.floor(y0))),
                   int(min(w, np.ceil(x1))), int(min(h, np.ceil(y1))))


def ring(roi: Roi, step: float) -> np.ndarray:
    """Points along the edge of ``roi`` (zero-displacement anchors)."""
    xs = np.linspace(roi.x0, roi.x1 - 1, max(2, int((roi.x1 - roi.x0) / step)))
    ys = np.linspace(roi.y0, roi.y1 - 1, max(2, int((roi.y1 - roi.y0) / step)))
    return np.vstack([np.c_[xs, np.full_like(xs, roi.y0)], np.c_[xs, np.full_like(xs, roi.y1 - 1)],
                      np.c_[np.full_like(ys, roi.x0), ys], np.c_[np.full_like(ys, roi.x1 - 1), ys]])


def backward_field(src: np.ndarray, dst: np.ndarray, anchors: np.ndarray, roi: Roi,
                   stride: int = 3) -> np.ndarray:
    """A smooth field over ``roi``: at each output pixel, the offset to read from.

    Landmarks at ``src`` move to ``dst``; ``anchors`` stay. Thin-plate-spline interpolation
    on a coarse grid, upsampled bilinearly (the fields are smooth, so little is lost).
    """
    import cv2
    from scipy.interpolate import RBFInterpolator

    pts = np.vstack([dst, anchors])
    vals = np.vstack([src - dst, np.zeros_like(anchors)])
    # Drop duplicate points (the TPS system would be singular).
    _, keep = np.unique(np.round(pts, 1), axis=0, return_index=True)
    keep = np.sort(keep)
    rbf = RBFInterpolator(pts[keep], vals[keep], kernel="thin_plate_spline", smoothing=0.5)
    h, w = roi.shape
    gy = np.arange(0, h + stride, stride, dtype=np.float64)
    gx = np.arange(0, w + stride, stride, dtype=np.float64)
    grid = np.stack(np.meshgrid(gx + roi.x0, gy + roi.y0), -1).reshape(-1, 2)
    coarse = rbf(grid).reshape(len(gy), len(gx), 2).astype(np.float32)
    full = cv2.resize(coarse, (len(gx) * stride, len(gy) * stride), interpolation=cv2.INTER_LINEAR)
    # resize maps pixel centres; shift so that full[y, x] == coarse value at (x, y).
    off = (stride - 1) / 2.0
    mx, my = np.meshgrid(np.arange(w, dtype=np.float32) + off, np.arange(h, dtype=np.float32) + off)
    field: np.ndarray = cv2.remap(full, mx, my, cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    return field


@dataclass
class FrameControls:
    """Everything that moves in one frame."""

    open: float = 0.0
    spread: float = 0.0
    round: float = 0.0
    close: float = 0.0
    blink: float = 0.0
    dx: float = 0.0  # head translation, pixels
    dy: float = 0.0
    roll: float = 0.0  # degrees
    breath: float = 0.0  # pixels (upwards)


class RigGeometry:
    """The framed portrait and the face's size and axes, which every part of the rig reads."""

    def __init__(self, base: np.ndarray, points: np.ndarray) -> None:
        import cv2

        self.base = np.ascontiguousarray(base)
        self.points = points.astype(np.float64)
        self.h, self.w = base.shape[:2]
        p = self.points
        self.face_h = float(np.linalg.norm(p[10] - p[152]))
        ex = p[291] - p[61]
        self.mouth_w = float(np.linalg.norm(ex))
        self.ex = ex / self.mouth_w
        self.ey = np.array([-self.ex[1], self.ex[0]])  # points down the face
        self.mouth_center = (p[13] + p[14]) / 2
        self._cv2 = cv2
