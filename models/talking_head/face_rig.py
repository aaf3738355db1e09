"""A portrait rigged for speech: face landmarks, framing, and a per-frame mesh warp.

Why this shape: a dense warp per frame is the costly part, so everything that can be is
precomputed once per portrait. Each mouth shape (jaw open, lips spread, lips rounded, lips
pressed) and the blink is a *backward displacement field* (for each output pixel, where in
the portrait to read), built by thin-plate-spline interpolation of MediaPipe face-mesh
landmark moves. A frame is then a weighted sum of a few small fields, one ``cv2.remap`` of
the head region, and a small overlay for the mouth interior.

The mouth can open although the photo's is closed, so the lips must tear apart. Two fields
per shape handle that: one that follows the upper lip and one that follows the jaw; a seam
along the (moving) middle of the lips picks between them. Pixels whose source lies on the
wrong side of the photo's own lip line are the newly opened cavity: they are painted with a
shaded interior (cavity, tongue, and — when the photo shows none — teeth under the upper
lip). Teeth the photo does show are photo pixels above the lip line, so they move with their
lip. Head motion is a smooth, masked rotation + translation applied after the face warp.

The parts: landmarks in :mod:`face_mesh`, placement in :mod:`placement`, shared regions and
fields in :mod:`warp`, the mouth's shapes in :mod:`mouth` and its painting in
:mod:`mouth_paint`; the eyes, the head motion and the frame itself here.
"""

from __future__ import annotations

import numpy as np

from models.talking_head.face_mesh import FACE_OVAL, LEFT_EYE, RIGHT_EYE
from models.talking_head.mouth_paint import MouthPaint
from models.talking_head.warp import FrameControls, Roi, smoothstep


class FaceRig(MouthPaint):
    """One framed portrait, ready to render frames from :class:`FrameControls`."""

    def __init__(self, base: np.ndarray, points: np.ndarray) -> None:
        super().__init__(base, points)
        self._build_mouth()
        self._build_eyes()
        self._build_motion()
        self._analyse_mouth_colours()
        self._lid_colours()
        self.last_controls = FrameControls()

    # -- eyes ---------------------------------------------------------------------------

    def _build_eyes(self) -> None:
        """Per eye: lid lines over the columns of a small region (blinks are built per frame).

        A closing lid is a tear in the backward field (above the lid edge the skin is read
        from higher up, below it the eye is read in place), which no smooth interpolation
        can give; per column it is a simple 1-D stretch of the lid skin.
        """
        p = self.points
        self.eyes: list[tuple[Roi, np.ndarray, np.ndarray, np.float32]] = []
        for upper, lower, corners in (RIGHT_EYE, LEFT_EYE):
            lid_up = np.vstack([p[corners[0]], p[upper], p[corners[1]]])
            lid_low = np.vstack([p[corners[0]], p[lower], p[corners[1]]])
            ou, ol = np.argsort(lid_up[:, 0]), np.argsort(lid_low[:, 0])
            x_lo, x_hi = lid_up[:, 0].min(), lid_up[:, 0].max()
            opening = float(np.max(lid_low[:, 1]) - np.min(lid_up[:, 1]))
            roi = Roi.around(x_lo - 1, lid_up[:, 1].min() - 1.6 * opening - 2, x_hi + 2,
                             lid_low[:, 1].max() + 2, self.w, self.h)
            xs = np.arange(roi.x0, roi.x1, dtype=np.float64)
            y_up = np.interp(xs, lid_up[ou, 0], lid_up[ou, 1])
            y_low = np.interp(xs, lid_low[ol, 0], lid_low[ol, 1])
            gap = np.where((xs > x_lo) & (xs < x_hi), np.maximum(y_low - y_up, 0.0), 0.0)
            self.eyes.append((roi, y_up.astype(np.float32), gap.astype(np.float32),
                              np.float32(1.4 * opening)))

    def _lid_colours(self) -> None:
        """Skin tone of each upper lid (bright half of a band above the lash line)."""
        self.lid_colours = []
        for roi, y_up, gap, reach in self.eyes:
            cols = np.nonzero(gap > 0)[0]
            samples = []
            for c in cols[:: max(1, len(cols) // 12)]:
                y = int(y_up[c])
                band = self.base[max(0, y - int(reach * 0.45)):max(1, y - 1), roi.x0 + c]
                samples.append(band)
            px = np.vstack(samples).astype(np.float32) if samples else np.zeros((0, 3))
            if len(px) < 3:
                self.lid_colours.append(np.array([170, 130, 110], np.float32) * self.exposure)
                continue
            v = px.mean(axis=1)
            keep = px[(v >= np.percentile(v, 30)) & (v <= np.percentile(v, 85))]
            self.lid_colours.append((np.median(keep if len(keep) else px, axis=0) * 0.93
                                     ).astype(np.float32))
        rng = np.random.default_rng(7)
        self.lid_grain = (1.0 + 0.04 * rng.standard_normal((64, 256))).astype(np.float32)

    def _lid(self, index: int, amount: float) -> tuple[Roi, np.ndarray]:
        """RGBA of the closing upper lid: skin from the lash line down to the lid's edge.

        Painted rather than warped so glasses rims and brows above the eye stay where they
        are; the edge carries a soft dark lash line.
        """
        roi, y_up, gap, _ = self.eyes[index]
        colour = self.lid_colours[index]
        yy = np.arange(roi.y0, roi.y1, dtype=np.float32)[:, None]
        edge = y_up + np.float32(0.97 * amount) * gap
        top = y_up + 0.15 * gap
        cover = (np.clip(edge - yy + 0.5, 0, 1) * np.clip((yy - top + 1.0) / 2.0, 0, 1)
                 * np.clip(gap / 2.0, 0, 1))
        t = np.clip((yy - y_up) / np.maximum(edge - y_up, 1.0), 0, 1)
        shade = 0.9 + 0.16 * np.sin(np.pi * np.clip(t * 0.9 + 0.1, 0, 1)) - 0.08 * t ** 3
        h, w = roi.shape
        shade = shade * self.lid_grain[:h % 64 or 64, :w % 256 or 256][:h, :w] if h <= 64 and w <= 256 else shade
        lash_w = max(1.0, 0.012 * self.face_h)
        lash = np.clip(1.0 - (edge - yy) / lash_w, 0, 1) * (yy <= edge + 0.5)
        rgb = colour[None, None, :] * shade[..., None]
        rgb = rgb * (1 - 0.65 * lash[..., None])
        return roi, np.dstack([rgb, cover]).astype(np.float32)

    # -- head motion ----------------------------------------------------------------------

    def _build_motion(self) -> None:
        import cv2

        p, fh = self.points, self.face_h
        hull = p[FACE_OVAL]
        top = hull[:, 1].min() - 0.45 * fh
        bottom = p[152, 1] + 0.9 * fh
        left = hull[:, 0].min() - 0.55 * fh
        right = hull[:, 0].max() + 0.55 * fh
        self.head_roi = Roi.around(left, top, right, bottom, self.w, self.h)
        roi = self.head_roi
        self.coarse = 4
        ch, cw = (roi.shape[0] + 3) // 4, (roi.shape[1] + 3) // 4
        gx, gy = np.meshgrid(np.arange(cw, dtype=np.float32) * 4 + roi.x0,
                             np.arange(ch, dtype=np.float32) * 4 + roi.y0)
        # Head weight: 1 over the head (face, hair), fading out over the neck.
        center = (hull.mean(axis=0) + p[10]) / 2
        center[1] -= 0.1 * fh
        rx, ry = 0.95 * fh, 1.0 * fh
        d = np.sqrt(((gx - center[0]) / rx) ** 2 + ((gy - center[1]) / ry) ** 2)
        head = 1.0 - smoothstep((d - 0.75) / 0.55)
        # Shoulders and neck breathe: a weight that rises below the chin.
        body = smoothstep((gy - p[152, 1]) / (0.5 * fh))
        # Everything fades to zero at the region's edge so the rest of the frame stays still.
        ex = np.minimum(gx - roi.x0, roi.x1 - 1 - gx) / (0.25 * fh)
        ey_ = np.minimum(gy - roi.y0, (roi.y1 - 1 - gy)) / (0.25 * fh)
        edge = smoothstep(np.minimum(ex, ey_))
        if roi.y1 >= self.h:  # the frame's bottom edge may move with the shoulders
            edge = smoothstep(np.minimum(ex, (gy - roi.y0) / (0.25 * fh)))
        self.w_head = (head * edge).astype(np.float32)
        self.w_breath = (np.maximum(head, body) * edge).astype(np.float32)
        self.cgx, self.cgy = gx, gy
        self.pivot = p[152] + self.ey * 0.35 * fh
        self.roi_gx, self.roi_gy = np.meshgrid(np.arange(roi.x0, roi.x1, dtype=np.float32),
                                               np.arange(roi.y0, roi.y1, dtype=np.float32))
        self._cv2_size = (roi.shape[1], roi.shape[0])
        del cv2

    def head_offsets(self, c: FrameControls, x: np.ndarray, y: np.ndarray,
                     w_head: np.ndarray, w_breath: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Backward offsets of the head motion at (x, y)."""
        th = np.deg2rad(c.roll)
        cs, sn = np.cos(-th) - 1.0, np.sin(-th)
        rx, ry = x - self.pivot[0], y - self.pivot[1]
        ox = w_head * (cs * rx - sn * ry - c.dx)
        oy = w_head * (sn * rx + cs * ry - c.dy) + w_breath * c.breath
        return ox.astype(np.float32), oy.astype(np.float32)

    # -- a frame ------------------------------------------------------------------------------

    def _sub(self, roi: Roi, margin: int) -> tuple[slice, slice]:
        """``roi`` (plus a margin) as slices of the head region's arrays."""
        hr = self.head_roi
        return (slice(max(roi.y0 - hr.y0 - margin, 0), max(roi.y1 - hr.y0 + margin, 0)),
                slice(max(roi.x0 - hr.x0 - margin, 0), max(roi.x1 - hr.x0 + margin, 0)))

    def _composite(self, out: np.ndarray, roi: Roi, rgba: np.ndarray, ox: np.ndarray,
                   oy: np.ndarray) -> None:
        """Blend an RGBA layer drawn in base coordinates, moved along with the head."""
        cv2 = self._cv2
        hr = self.head_roi
        sub = self._sub(roi, 8)
        hx = self.roi_gx[sub] + ox[sub]
        hy = self.roi_gy[sub] + oy[sub]
        if hx.size == 0:
            return
        warped = cv2.remap(rgba, hx - roi.x0, hy - roi.y0, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        a = warped[..., 3:4]
        ys = slice(hr.y0 + sub[0].start, hr.y0 + sub[0].start + warped.shape[0])
        xs = slice(hr.x0 + sub[1].start, hr.x0 + sub[1].start + warped.shape[1])
        region = out[ys, xs].astype(np.float32)
        out[ys, xs] = np.clip(region * (1 - a) + warped[..., :3] * a, 0, 255).astype(np.uint8)

    def render(self, c: FrameControls, out: np.ndarray | None = None) -> np.ndarray:
        """One RGB frame (uint8 HxWx3)."""
        cv2 = self._cv2
        if out is None:
            out = self.base.copy()
        else:
            out[:] = self.base
        hr = self.head_roi
        ox, oy = self.head_offsets(c, self.cgx, self.cgy, self.w_head, self.w_breath)
        size = self._cv2_size
        cw, ch = ox.shape[1] * 4, ox.shape[0] * 4
        ox = cv2.resize(ox, (cw, ch), interpolation=cv2.INTER_LINEAR)[:size[1], :size[0]]
        oy = cv2.resize(oy, (cw, ch), interpolation=cv2.INTER_LINEAR)[:size[1], :size[0]]
        map_x = self.roi_gx + ox
        map_y = self.roi_gy + oy
        pts = self.landmarks_for(c)
        # Local (mouth) offsets in base coordinates, sampled where the head motion reads.
        overlays: list[tuple[Roi, np.ndarray]] = []
        if c.open or c.spread or c.round or c.close:
            field, wrong = self._mouth_field(c, pts)
            roi = self.mouth_roi
            sub = self._sub(roi, 6)
            mx, my = map_x[sub], map_y[sub]
            off = cv2.remap(field, mx - roi.x0, my - roi.y0, cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            mx += off[..., 0]
            my += off[..., 1]
            if wrong.any():
                overlays.append(self._interior(pts, wrong))
            if self.fills_mouth and (fill := self._lip_fill(pts, field)) is not None:
                overlays.append(fill)
        if c.blink > 0.02:
            overlays.extend(self._lid(i, min(c.blink, 1.0)) for i in range(len(self.eyes)))
        out[hr.slices] = cv2.remap(self.base, map_x, map_y, cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
        for roi, rgba in overlays:
            self._composite(out, roi, rgba, ox, oy)
        self.last_controls = c
        return out
