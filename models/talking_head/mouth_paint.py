"""What is painted into a moving mouth: the photo's lip and cavity colours, lips that meet
where the photo's mouth was open, and the newly opened interior (cavity, tongue, teeth).
"""

from __future__ import annotations

import numpy as np

from models.talking_head.face_mesh import LOWER_INNER, LOWER_OUTER, UPPER_INNER, UPPER_OUTER
from models.talking_head.mouth import MouthShapes
from models.talking_head.warp import Roi, smoothstep


class MouthPaint(MouthShapes):
    """The mouth's colours (read once per portrait) and its painted layers (per frame)."""

    def _analyse_mouth_colours(self) -> None:
        import cv2

        p = self.points
        lips = np.zeros((self.h, self.w), np.uint8)
        cv2.fillPoly(lips, [np.r_[p[UPPER_OUTER], p[UPPER_INNER][::-1]].round().astype(np.int32),
                            np.r_[p[LOWER_OUTER], p[LOWER_INNER][::-1]].round().astype(np.int32)], 255)
        sel = self.base[lips > 0]
        self.lip_colour = (np.median(sel, axis=0) if len(sel) else np.array([150, 80, 80])
                           ).astype(np.float32)
        cheek = self.base[int(p[205, 1]) - 2:int(p[205, 1]) + 3, int(p[205, 0]) - 2:int(p[205, 0]) + 3]
        skin = cheek.reshape(-1, 3).mean(axis=0) if cheek.size else np.array([180, 140, 120])
        self.exposure = float(np.clip(skin.mean() / 165.0, 0.45, 1.25))
        # Teeth visible in the photo: bright, unsaturated pixels inside the inner lips.
        inner = np.zeros((self.h, self.w), np.uint8)
        cv2.fillPoly(inner, [np.r_[p[UPPER_INNER], p[LOWER_INNER][::-1]].round().astype(np.int32)], 255)
        px = self.base[inner > 0].astype(np.float32)
        self.photo_teeth = False
        self.cavity_colour = self.lip_colour * 0.3
        if len(px) > 12:
            v = px.max(axis=1)
            s = (v - px.min(axis=1)) / np.maximum(v, 1)
            teeth = (v > 0.75 * skin.max()) & (s < 0.35)
            self.photo_teeth = bool(teeth.mean() > 0.12 and len(px) > 40)
            dark = px[v <= np.percentile(v, 35)]
            if len(dark) and self.photo_gap > 0.06 * self.mouth_w:
                self.cavity_colour = np.median(dark, axis=0)
        self._lip_bands()

    def _lip_bands(self) -> None:
        """What closing an open mouth paints: per column of the mouth region, the photo's
        own inner lip lines and the colour of the inner half of each lip.

        Why: when lips that are apart in the photo (a laugh, teeth showing) are warped
        together, the pixels next to the meeting line are read from inside the photo's mouth
        (teeth, cavity) and from the blurred lip edges, which showed as a flat patch with a
        light or dark seam. Those pixels are repainted with the lips' own colours instead.
        """
        import cv2

        p, roi = self.points, self.mouth_roi
        xs = np.arange(roi.x0, roi.x1, dtype=np.float64)

        def line(ids: list[int]) -> np.ndarray:
            pts = p[ids]
            order = np.argsort(pts[:, 0])
            edge: np.ndarray = np.interp(xs, pts[order, 0], pts[order, 1]).astype(np.float32)
            return edge

        up_in, low_in = line(UPPER_INNER), line(LOWER_INNER)
        up_out, low_out = line(UPPER_OUTER), line(LOWER_OUTER)
        left, right = p[UPPER_INNER][:, 0].min(), p[UPPER_INNER][:, 0].max()
        self.src_up_y, self.src_low_y = up_in, low_in
        self.src_open = ((low_in - up_in) > 1.0) & (xs > left) & (xs < right)
        self.lip_thick_up = np.maximum(up_in - up_out, 1.0).astype(np.float32)
        self.lip_thick_low = np.maximum(low_out - low_in, 1.0).astype(np.float32)
        self.fills_mouth = bool(self.photo_gap > 0.04 * self.mouth_w and self.src_open.any())
        gy = self.mouth_grid_y
        patch = self.base[roi.slices].astype(np.float32)
        colours = []
        for band in (((gy >= (up_out + up_in)[None, :] / 2) & (gy <= up_in[None, :] - 0.5)),
                     ((gy >= low_in[None, :] + 0.5) & (gy <= (low_out + low_in)[None, :] / 2))):
            weight = band.astype(np.float32)
            total = weight.sum(axis=0)
            mean = (patch * weight[..., None]).sum(axis=0) / np.maximum(total, 1.0)[:, None]
            mean = np.where(total[:, None] > 0, mean, self.lip_colour[None, :])
            # Smooth along the lip (a few pixels), so one bright tooth edge does not streak.
            k = max(3, int(0.04 * self.mouth_w) | 1)
            colours.append(cv2.blur(mean[None, :, :].astype(np.float32), (k, 1))[0])
        self.fill_up_col, self.fill_low_col = colours

    def _lip_fill(self, pts: np.ndarray, field: np.ndarray) -> tuple[Roi, np.ndarray] | None:
        """RGBA of lips meeting where the photo's mouth was open: the pixels outside the
        moved inner lips that read from inside the photo's opening (see :meth:`_lip_bands`),
        in each lip's own colour, shaded a little darker toward the line where they meet."""
        import cv2

        roi = self.mouth_roi
        h, w = roi.shape
        xs = np.arange(roi.x0, roi.x1, dtype=np.float64)
        up_in, low_in = pts[UPPER_INNER], pts[LOWER_INNER]
        ou, ol = np.argsort(up_in[:, 0]), np.argsort(low_in[:, 0])
        y_up = np.interp(xs, up_in[ou, 0], up_in[ou, 1]).astype(np.float32)
        y_low = np.interp(xs, low_in[ol, 0], low_in[ol, 1]).astype(np.float32)
        src_open = self.src_open
        top = min(float(y_up.min()), float(self.src_up_y[src_open].min())) - 3.0
        bottom = max(float(y_low.max()), float(self.src_low_y[src_open].max())) + 3.0
        r0, r1 = max(int(top) - roi.y0, 0), min(int(np.ceil(bottom)) - roi.y0 + 1, h)
        if r1 <= r0:
            return None
        gy = self.mouth_grid_y[r0:r1]
        band = field[r0:r1]
        sx = self.mouth_grid_x[r0:r1] + band[..., 0]
        sy = gy + band[..., 1]
        col = np.clip(np.rint(sx).astype(np.intp) - roi.x0, 0, w - 1)
        inside = src_open[col] & (sy > self.src_up_y[col] - 0.8) & (sy < self.src_low_y[col] + 0.8)
        opened = ((y_low - y_up) > 0.3)[None, :]
        in_gap = (gy >= y_up[None, :] - 0.5) & (gy <= y_low[None, :] + 0.5) & opened
        mask = inside & ~in_gap
        if not mask.any():
            return None
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        a0, a1 = max(rows[0] - 3, 0), min(rows[-1] + 4, mask.shape[0])
        c0, c1 = max(cols[0] - 3, 0), min(cols[-1] + 4, w)
        mask, gy = mask[a0:a1, c0:c1], gy[a0:a1, c0:c1]
        mid = ((y_up + y_low) / 2)[None, c0:c1]
        d = gy - mid
        above = (1.0 / (1.0 + np.exp(np.clip(d / 0.6, -30, 30))))[..., None]  # soft, no stairs
        colour = (above * self.fill_up_col[None, c0:c1]
                  + (1 - above) * self.fill_low_col[None, c0:c1])
        thick = (above[..., 0] * self.lip_thick_up[None, c0:c1]
                 + (1 - above[..., 0]) * self.lip_thick_low[None, c0:c1])
        shade = 0.8 + 0.2 * smoothstep(np.abs(d) / np.maximum(0.6 * thick, 1.0))
        alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.7)
        alpha = np.maximum(alpha, mask.astype(np.float32))
        out = Roi(roi.x0 + int(c0), roi.y0 + r0 + int(a0), roi.x0 + int(c1), roi.y0 + r0 + int(a1))
        return out, np.dstack([colour * shade[..., None], alpha]).astype(np.float32)

    def _interior(self, pts: np.ndarray, wrong: np.ndarray) -> tuple[Roi, np.ndarray]:
        """RGBA of the newly opened mouth, over the part of the mouth ROI it covers."""
        import cv2

        mr = self.mouth_roi
        rows, cols = np.nonzero(wrong.any(axis=1))[0], np.nonzero(wrong.any(axis=0))[0]
        r0, r1 = max(rows[0] - 3, 0), min(rows[-1] + 4, mr.shape[0])
        c0, c1 = max(cols[0] - 3, 0), min(cols[-1] + 4, mr.shape[1])
        roi = Roi(int(mr.x0 + c0), int(mr.y0 + r0), int(mr.x0 + c1), int(mr.y0 + r1))
        alpha = cv2.GaussianBlur(np.ascontiguousarray(wrong[r0:r1, c0:c1]), (0, 0), 0.8)
        up_in, low_in = pts[UPPER_INNER], pts[LOWER_INNER]
        ou, ol = np.argsort(up_in[:, 0]), np.argsort(low_in[:, 0])
        xs = np.arange(roi.x0, roi.x1, dtype=np.float64)
        y_up = np.interp(xs, up_in[ou, 0], up_in[ou, 1]).astype(np.float32)
        y_low = np.interp(xs, low_in[ol, 0], low_in[ol, 1]).astype(np.float32)
        gap = np.maximum(y_low - y_up, 1.0)
        left, right = up_in[ou[0], 0], up_in[ou[-1], 0]
        u = np.clip((xs - (left + right) / 2) / max((right - left) / 2, 1), -1, 1).astype(np.float32)
        yy = self.mouth_grid_y[r0:r1, c0:c1]
        rel = np.clip((yy - y_up[None, :]) / gap[None, :], 0, 1)
        side_shade = (1.0 - 0.55 * np.abs(u) ** 2)[None, :]
        # Cavity: darkest at the back/middle, a little light from the lips at top and bottom.
        depth = 0.55 + 0.45 * np.abs(rel - 0.45) * 2
        colour = self.cavity_colour[None, None, :] * (depth * side_shade)[..., None]
        # Tongue: a soft warm shape rising from the lower lip when the mouth is open.
        wm = self.mouth_w
        tongue_w = smoothstep((gap - 0.12 * wm) / (0.15 * wm))[None, :]
        tongue = smoothstep((rel - 0.62) / 0.25) * tongue_w * (1.0 - np.abs(u)[None, :] ** 2)
        tongue_col = self.lip_colour * np.array([0.62, 0.42, 0.45], np.float32) * self.exposure / max(
            self.lip_colour.mean() / 140.0, 0.5)
        colour = colour * (1 - tongue[..., None]) + tongue_col[None, None, :] * (
            tongue * side_shade * 0.85)[..., None]
        if self.photo_gap < 0.06 * wm and not self.photo_teeth:
            tooth = np.array([206, 196, 178], np.float32) * min(self.exposure, 1.0)
            top_px = yy - y_up[None, :]
            teeth_h = (np.minimum(0.11 * wm, 0.42 * gap) * (1 - np.abs(u) ** 3))[None, :]
            upper = smoothstep(np.clip((teeth_h - top_px) / 1.2, 0, 1)) * (top_px > -1)
            shade = (0.72 + 0.28 * smoothstep(top_px / np.maximum(0.35 * teeth_h, 1))) * side_shade
            colour = colour * (1 - upper[..., None]) + tooth * (upper * shade)[..., None]
            # Lower teeth peek out only when the mouth is wide open.
            low_px = y_low[None, :] - yy
            low_h = (np.minimum(0.05 * wm, 0.2 * gap) * smoothstep((gap - 0.18 * wm) / (0.1 * wm))
                     * (1 - np.abs(u) ** 2))[None, :]
            lower_t = smoothstep(np.clip((low_h - low_px) / 1.2, 0, 1)) * (low_px > -1) * (low_h > 0.5)
            colour = colour * (1 - 0.8 * lower_t[..., None]) + tooth * (
                0.8 * lower_t * 0.75 * side_shade)[..., None]
        return roi, np.dstack([colour, alpha]).astype(np.float32)
