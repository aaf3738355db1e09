"""The mouth's shapes as warp fields: jaw open, lips spread, rounded and pressed.

Each shape moves mouth landmarks; two backward fields per shape (one that follows the upper
lip, one the jaw) are built once per portrait, and a frame mixes them across a seam along the
moving middle of the lips, marking where the mouth newly opens (see :mod:`face_rig`).
"""

from __future__ import annotations

import numpy as np

from models.talking_head.face_mesh import (
    CHEEKS,
    CHIN,
    FACE_OVAL,
    JAW,
    LOWER_INNER,
    LOWER_OUTER,
    NOSE,
    SHAPES,
    UPPER_INNER,
    UPPER_OUTER,
)
from models.talking_head.warp import FrameControls, RigGeometry, Roi, backward_field, ring

ROUND_PURSE = 0.025  # mouth widths each inner lip moves toward the other at full ``round``
JAW_SHARE = 0.8  # of an open photo's lip gap, the part the jaw rises to close the mouth


class MouthShapes(RigGeometry):
    """The mouth's moves and fields, and the mouth field of a frame."""

    def _u(self, idx: list[int]) -> np.ndarray:
        """Position of points along the mouth, -1 (right corner) .. 1 (left corner)."""
        rel = (self.points[idx] - self.mouth_center) @ self.ex
        half_r = abs((self.points[61] - self.mouth_center) @ self.ex)
        half_l = abs((self.points[291] - self.mouth_center) @ self.ex)
        along: np.ndarray = np.where(rel < 0, rel / max(half_r, 1e-6),
                                     rel / max(half_l, 1e-6)).clip(-1, 1)
        return along

    def _mouth_moves(self) -> dict[str, dict[int, np.ndarray]]:
        """Forward landmark moves (pixels) of each mouth shape at full strength."""
        p, wm, ex, ey = self.points, self.mouth_w, self.ex, self.ey
        lip_ids = sorted(set(UPPER_OUTER + LOWER_OUTER + UPPER_INNER + LOWER_INNER))
        u = dict(zip(lip_ids, self._u(lip_ids), strict=True))
        upper = set(UPPER_OUTER + UPPER_INNER) - {61, 291, 78, 308}
        lower = set(LOWER_OUTER + LOWER_INNER) - {61, 291, 78, 308}
        corners = {61: -1.0, 78: -1.0, 291: 1.0, 308: 1.0}

        def prof(i: int) -> float:
            return float(0.2 + 0.8 * (1 - u[i] ** 2))

        moves: dict[str, dict[int, np.ndarray]] = {s: {} for s in SHAPES}
        # open: the jaw drops, the upper lip lifts a little, corners follow part way.
        for i in lower:
            moves["open"][i] = ey * 0.30 * wm * prof(i)
        for i in upper:
            moves["open"][i] = -ey * 0.04 * wm * prof(i)
        for i, side in corners.items():
            moves["open"][i] = ey * 0.07 * wm - ex * side * 0.03 * wm
        for i in CHIN:
            moves["open"][i] = ey * 0.27 * wm
        for a, b, k in JAW:
            moves["open"][a] = ey * 0.27 * wm * k
            moves["open"][b] = ey * 0.27 * wm * k
        # spread (i/e): corners out and slightly up, lips thinner and closer.
        for i in lip_ids:
            mv = ex * 0.09 * wm * u[i]
            if i in lower:
                mv = mv - ey * 0.035 * wm * prof(i)
            elif i in upper:
                mv = mv + ey * 0.005 * wm * prof(i)
            else:
                mv = mv - ey * 0.02 * wm
            moves["spread"][i] = mv
        # round (o/u): corners in, lips pushed out (outer edges away from the middle).
        for i in lip_ids:
            mv = -ex * 0.15 * wm * u[i]
            if i in set(UPPER_OUTER) - {61, 291}:
                mv = mv - ey * 0.03 * wm * prof(i)
            elif i in set(LOWER_OUTER) - {61, 291}:
                mv = mv + ey * 0.03 * wm * prof(i)
            moves["round"][i] = mv
        # ... and the opening narrows top to bottom too: a rounded vowel's lips purse
        # towards a small round hole, they do not gape taller than for /a/.
        for i in set(UPPER_INNER) - {78, 308}:
            moves["round"][i] = moves["round"][i] + ey * ROUND_PURSE * wm * prof(i)
        for i in set(LOWER_INNER) - {78, 308}:
            moves["round"][i] = moves["round"][i] - ey * ROUND_PURSE * wm * prof(i)
        # close (m/b/p): inner lips meet (whatever the photo's gap), lips press a little.
        # On a photo with the mouth open (a laugh), the jaw rises to close it: the lower lip
        # and the chin come up most of the photo's gap and the upper lip down the rest, so
        # the lips keep their own thickness instead of stretching into one tall band.
        pairs = list(zip(UPPER_INNER[1:-1], LOWER_INNER[1:-1], strict=True))
        gaps = [max(0.0, float((p[b] - p[a]) @ ey)) for a, b in pairs]
        top = max(gaps, default=0.0)
        laugh = top > 0.02 * wm  # a closed-mouth photo keeps its jaw where it is
        share = JAW_SHARE if laugh else 0.5
        rise, descent = (share * top, (1 - share) * top) if laugh else (0.0, 0.0)
        for (a, b), gap in zip(pairs, gaps, strict=True):
            moves["close"][a] = ey * ((1 - share) * gap + 0.012 * wm)
            moves["close"][b] = -ey * (share * gap + 0.012 * wm)
        for i in set(UPPER_OUTER) - {61, 291}:
            moves["close"][i] = ey * (0.02 * wm + descent) * prof(i)
        for i in set(LOWER_OUTER) - {61, 291}:
            moves["close"][i] = -ey * (0.025 * wm * prof(i) + rise * (0.35 + 0.65 * prof(i)))
        if laugh:
            for i in corners:
                moves["close"][i] = -ey * 0.3 * rise
            for i in CHIN:
                moves["close"][i] = -ey * rise
            for a, b, k in JAW:
                moves["close"][a] = -ey * rise * k
                moves["close"][b] = -ey * rise * k
        return moves

    def _build_mouth(self) -> None:
        p, wm = self.points, self.mouth_w
        xs = p[FACE_OVAL + UPPER_OUTER + LOWER_OUTER][:, 0]
        lo = p[[61, 291, 2, 152]]
        x0 = max(lo[:, 0].min() - 0.9 * wm, xs.min() - 0.1 * wm)
        x1 = min(lo[:, 0].max() + 0.9 * wm, xs.max() + 0.1 * wm)
        y0 = p[[2, 98, 327]][:, 1].min() - 0.05 * wm
        y1 = p[152, 1] + 0.7 * wm
        self.mouth_roi = Roi.around(x0, y0, x1, y1, self.w, self.h)
        roi = self.mouth_roi
        self.moves = self._mouth_moves()
        self._move_arrays = {k: (np.array(list(v), dtype=np.intp), np.array(list(v.values())))
                             for k, v in self.moves.items()}
        upper_ids = set(UPPER_OUTER + UPPER_INNER) - {61, 291, 78, 308}
        lower_ids = set(LOWER_OUTER + LOWER_INNER + CHIN) | {a for a, _, _ in JAW} | {
            b for _, b, _ in JAW}
        lower_ids -= {61, 291, 78, 308}
        fixed = [i for i in NOSE + CHEEKS if roi.x0 <= p[i, 0] < roi.x1 and roi.y0 <= p[i, 1] < roi.y1]
        anchors = np.vstack([p[fixed], ring(roi, 0.25 * wm)])
        self.fields_up: dict[str, np.ndarray] = {}
        self.fields_low: dict[str, np.ndarray] = {}
        for shape in SHAPES:
            mv = self.moves[shape]
            for side, exclude in (("up", lower_ids), ("low", upper_ids)):
                ids = [i for i in mv if i not in exclude]
                src = p[ids]
                dst = src + np.array([mv[i] for i in ids])
                # Landmarks of this shape that do not move still pin the field.
                still = [i for i in UPPER_OUTER + LOWER_OUTER + CHIN
                         if i not in mv and i not in exclude]
                field = backward_field(src, dst, np.vstack([anchors, p[still]]) if still
                                       else anchors, roi)
                (self.fields_up if side == "up" else self.fields_low)[shape] = field
        # The photo's own lip line (source midline), as y over x, for the cavity test.
        up_in, low_in = p[UPPER_INNER], p[LOWER_INNER]
        order = np.argsort(up_in[:, 0])
        self.src_mid_x = up_in[order, 0]
        self.src_mid_y = ((up_in + low_in) / 2)[order, 1]
        self.photo_gap = float(np.max((low_in - up_in) @ self.ey))
        h, w = roi.shape
        self.mouth_grid_x, self.mouth_grid_y = np.meshgrid(
            np.arange(roi.x0, roi.x1, dtype=np.float32), np.arange(roi.y0, roi.y1, dtype=np.float32))


    def landmarks_for(self, c: FrameControls) -> np.ndarray:
        """Mouth landmarks moved by the mouth controls (base coordinates, no head motion)."""
        pts = self.points.copy()
        for shape in SHAPES:
            wgt = getattr(c, shape)
            if wgt:
                ids, moves = self._move_arrays[shape]
                pts[ids] += wgt * moves
        return pts

    def _weighted(self, fields: dict[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
        """Sum of ``weights`` times the shapes' fields, one in-place pass per moving shape
        (cv2.scaleAdd; a BLAS mat-vec here woke OpenBLAS's spinning threads)."""
        cv2 = self._cv2
        out: np.ndarray | None = None
        for wgt, shape in zip(weights, SHAPES, strict=True):
            if not wgt:
                continue
            if out is None:
                out = fields[shape] * np.float32(wgt)
            else:
                cv2.scaleAdd(fields[shape], float(wgt), out, dst=out)
        assert out is not None
        return out

    def _mouth_field(self, c: FrameControls, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Backward offsets over the mouth ROI and the mask of newly opened cavity."""
        weights = np.array([getattr(c, s) for s in SHAPES], np.float32)
        roi = self.mouth_roi
        if not weights.any():  # nothing moves
            return np.zeros((*roi.shape, 2), np.float32), np.zeros(roi.shape, np.float32)
        h, w = roi.shape
        up = self._weighted(self.fields_up, weights)
        low = self._weighted(self.fields_low, weights)
        # Seam: the middle line of the moved inner lips, sharp between the corners, soft past.
        up_in, low_in = pts[UPPER_INNER], pts[LOWER_INNER]
        mid = (up_in + low_in) / 2
        order = np.argsort(mid[:, 0])
        xs = np.arange(roi.x0, roi.x1, dtype=np.float64)
        mid_y = np.interp(xs, mid[order, 0], mid[order, 1]).astype(np.float32)
        outside = np.maximum(mid[order[0], 0] - xs, xs - mid[order[-1], 0])
        softness = (0.6 + np.clip(outside, 0, None) * 1.2).astype(np.float32)
        z = np.clip((self.mouth_grid_y - mid_y[None, :]) / softness[None, :], -30, 30)
        lower = 1.0 / (1.0 + np.exp(-z))
        field = low - up
        field *= lower[..., None]
        field += up
        # Cavity: where the source lies on the wrong side of the photo's lip line, only
        # between the moved inner lips (pressed lips that overlap open nothing). Only the
        # rows between the lips can qualify, so the test runs on that band alone.
        ou, ol = np.argsort(up_in[:, 0]), np.argsort(low_in[:, 0])
        y_up = np.interp(xs, up_in[ou, 0], up_in[ou, 1]).astype(np.float32)
        y_low = np.interp(xs, low_in[ol, 0], low_in[ol, 1]).astype(np.float32)
        wrong = np.zeros(roi.shape, bool)
        opened = (y_low - y_up) > 0.3
        if opened.any():
            r0 = max(0, int(np.floor(y_up[opened].min() - 1.0)) - roi.y0)
            r1 = min(h, int(np.ceil(y_low[opened].max() + 1.0)) - roi.y0 + 1)
            if r1 > r0:
                gy = self.mouth_grid_y[r0:r1]
                band = field[r0:r1]
                sx = self.mouth_grid_x[r0:r1] + band[..., 0]
                sy = gy + band[..., 1]
                src_mid = np.interp(sx, self.src_mid_x, self.src_mid_y)
                inside = (sx > self.src_mid_x[0]) & (sx < self.src_mid_x[-1])
                below = lower[r0:r1] > 0.5
                flipped = np.where(below, sy < src_mid - 0.5, sy > src_mid + 0.5) & inside
                between = ((gy >= y_up[None, :] - 1.0) & (gy <= y_low[None, :] + 1.0)
                           & opened[None, :])
                wrong[r0:r1] = flipped & between
        return field.astype(np.float32, copy=False), wrong.astype(np.float32)
