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
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from models.errors import InvalidInput

# MediaPipe face-mesh indices (subject's right = image left first).
UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LOWER_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
CHIN = [152, 175, 199, 200, 18]
JAW = [(148, 377, 0.86), (176, 400, 0.73), (149, 378, 0.56), (150, 379, 0.4),
       (136, 365, 0.26), (172, 397, 0.15), (58, 288, 0.08), (132, 361, 0.0)]
NOSE = [1, 2, 4, 5, 98, 327, 94, 97, 326, 129, 358, 64, 294]
CHEEKS = [234, 454, 93, 323, 116, 345, 123, 352, 50, 280, 205, 425, 187, 411]
RIGHT_EYE = ([246, 161, 160, 159, 158, 157, 173], [7, 163, 144, 145, 153, 154, 155], (33, 133))
LEFT_EYE = ([466, 388, 387, 386, 385, 384, 398], [249, 390, 373, 374, 380, 381, 382], (263, 362))
RIGHT_BROW = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55]
LEFT_BROW = [300, 293, 334, 296, 336, 276, 283, 282, 295, 285]
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54,
             103, 67, 109]
SHAPES = ("open", "spread", "round", "close")


def no_face(reason: str, message: str, message_ja: str) -> InvalidInput:
    return InvalidInput(message, code="VIDEO_NO_FACE", message_ja=message_ja,
                        details={"reason": reason})


# ------------------------------------------------------------------------------ landmarks

_MESH_LOCK = threading.Lock()
_MODELS: dict[str, object] = {}


def _model(name: str) -> object:
    if name not in _MODELS:
        import mediapipe as mp

        if name == "mesh":
            _MODELS[name] = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=0.5)
        else:
            _MODELS[name] = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=0.5)
    return _MODELS[name]


def _mesh(rgb: np.ndarray) -> np.ndarray | None:
    result = _model("mesh").process(np.ascontiguousarray(rgb))  # type: ignore[attr-defined]
    if not result.multi_face_landmarks:
        return None
    h, w = rgb.shape[:2]
    pts = result.multi_face_landmarks[0].landmark
    return np.array([[p.x * w, p.y * h] for p in pts], dtype=np.float64)


def detect_landmarks(rgb: np.ndarray) -> np.ndarray:
    """478 face-mesh points (x, y in pixels) of the most prominent face, or VIDEO_NO_FACE.

    The mesh's own detector is short-range; a small face in a large photo is found with the
    full-range face detector first and meshed on a crop around it.
    """
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, 1280.0 / max(h, w))
    small = cv2.resize(rgb, (round(w * scale), round(h * scale)),
                       interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    with _MESH_LOCK:
        points = _mesh(small)
        if points is None:
            found = _model("detect").process(np.ascontiguousarray(small))  # type: ignore[attr-defined]
            if found.detections:
                box = found.detections[0].location_data.relative_bounding_box
                sh, sw = small.shape[:2]
                cx, cy = (box.xmin + box.width / 2) * sw, (box.ymin + box.height / 2) * sh
                side = max(box.width * sw, box.height * sh) * 2.2
                x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
                x1, y1 = int(min(sw, cx + side / 2)), int(min(sh, cy + side / 2))
                if x1 - x0 > 16 and y1 - y0 > 16:
                    crop = small[y0:y1, x0:x1]
                    up = 512.0 / max(crop.shape[:2])
                    crop = cv2.resize(crop, (round(crop.shape[1] * up), round(crop.shape[0] * up)),
                                      interpolation=cv2.INTER_CUBIC)
                    points = _mesh(crop)
                    if points is not None:
                        points = points / up + np.array([x0, y0])
    if points is None:
        raise no_face("not_found", "No face was found in the portrait. Use a photo where one "
                      "face is clearly visible, facing the camera.",
                      "写真に顔が見つかりません。正面を向いた顔がはっきり写った写真を使ってください。")
    landmarks: np.ndarray = points / scale
    check_usable(landmarks)
    return landmarks


def check_usable(points: np.ndarray) -> None:
    """Refuse faces too small or turned too far for a believable warp."""
    face_h = float(np.linalg.norm(points[10] - points[152]))
    if face_h < 48:
        raise no_face("too_small", f"The face is too small ({face_h:.0f} px tall); use a "
                      "closer photo (at least 48 px from forehead to chin).",
                      "顔が小さすぎます。もっと顔が大きく写った写真を使ってください。")
    right = float(np.linalg.norm(points[1] - points[33]))
    left = float(np.linalg.norm(points[1] - points[263]))
    ratio = max(left, right) / max(min(left, right), 1e-6)
    if ratio > 3.2:
        raise no_face("turned", "The face is turned too far from the camera; use a photo "
                      "facing the camera (a slight turn is fine).",
                      "顔が横を向きすぎています。正面（少しの傾きまで）を向いた写真を使ってください。")


# ------------------------------------------------------------------------------- framing


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


# ------------------------------------------------------------------------------- fields


def _smoothstep(x: np.ndarray) -> np.ndarray:
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


def _ring(roi: Roi, step: float) -> np.ndarray:
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


class FaceRig:
    """One framed portrait, ready to render frames from :class:`FrameControls`."""

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
        self._build_mouth()
        self._build_eyes()
        self._build_motion()
        self._analyse_mouth_colours()
        self._lid_colours()
        self.last_controls = FrameControls()
        self._cv2 = cv2

    # -- mouth --------------------------------------------------------------------------

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
        # close (m/b/p): inner lips meet (whatever the photo's gap), lips press a little.
        for a, b in zip(UPPER_INNER[1:-1], LOWER_INNER[1:-1], strict=True):
            gap = max(0.0, float((p[b] - p[a]) @ ey))
            moves["close"][a] = ey * (gap / 2 + 0.012 * wm)
            moves["close"][b] = -ey * (gap / 2 + 0.012 * wm)
        for i in set(UPPER_OUTER) - {61, 291}:
            moves["close"][i] = ey * 0.02 * wm * prof(i)
        for i in set(LOWER_OUTER) - {61, 291}:
            moves["close"][i] = -ey * 0.025 * wm * prof(i)
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
        anchors = np.vstack([p[fixed], _ring(roi, 0.25 * wm)])
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
        head = 1.0 - _smoothstep((d - 0.75) / 0.55)
        # Shoulders and neck breathe: a weight that rises below the chin.
        body = _smoothstep((gy - p[152, 1]) / (0.5 * fh))
        # Everything fades to zero at the region's edge so the rest of the frame stays still.
        ex = np.minimum(gx - roi.x0, roi.x1 - 1 - gx) / (0.25 * fh)
        ey_ = np.minimum(gy - roi.y0, (roi.y1 - 1 - gy)) / (0.25 * fh)
        edge = _smoothstep(np.minimum(ex, ey_))
        if roi.y1 >= self.h:  # the frame's bottom edge may move with the shoulders
            edge = _smoothstep(np.minimum(ex, (gy - roi.y0) / (0.25 * fh)))
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

    # -- colours ----------------------------------------------------------------------------

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

    # -- a frame ------------------------------------------------------------------------------

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
        shade = 0.8 + 0.2 * _smoothstep(np.abs(d) / np.maximum(0.6 * thick, 1.0))
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
        tongue_w = _smoothstep((gap - 0.12 * wm) / (0.15 * wm))[None, :]
        tongue = _smoothstep((rel - 0.62) / 0.25) * tongue_w * (1.0 - np.abs(u)[None, :] ** 2)
        tongue_col = self.lip_colour * np.array([0.62, 0.42, 0.45], np.float32) * self.exposure / max(
            self.lip_colour.mean() / 140.0, 0.5)
        colour = colour * (1 - tongue[..., None]) + tongue_col[None, None, :] * (
            tongue * side_shade * 0.85)[..., None]
        if self.photo_gap < 0.06 * wm and not self.photo_teeth:
            tooth = np.array([206, 196, 178], np.float32) * min(self.exposure, 1.0)
            top_px = yy - y_up[None, :]
            teeth_h = (np.minimum(0.11 * wm, 0.42 * gap) * (1 - np.abs(u) ** 3))[None, :]
            upper = _smoothstep(np.clip((teeth_h - top_px) / 1.2, 0, 1)) * (top_px > -1)
            shade = (0.72 + 0.28 * _smoothstep(top_px / np.maximum(0.35 * teeth_h, 1))) * side_shade
            colour = colour * (1 - upper[..., None]) + tooth * (upper * shade)[..., None]
            # Lower teeth peek out only when the mouth is wide open.
            low_px = y_low[None, :] - yy
            low_h = (np.minimum(0.05 * wm, 0.2 * gap) * _smoothstep((gap - 0.18 * wm) / (0.1 * wm))
                     * (1 - np.abs(u) ** 2))[None, :]
            lower_t = _smoothstep(np.clip((low_h - low_px) / 1.2, 0, 1)) * (low_px > -1) * (low_h > 0.5)
            colour = colour * (1 - 0.8 * lower_t[..., None]) + tooth * (
                0.8 * lower_t * 0.75 * side_shade)[..., None]
        return roi, np.dstack([colour, alpha]).astype(np.float32)

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
