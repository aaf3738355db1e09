"""Find the people in a photo: mediapipe face detection + selfie-mask components + pose.

Faces come from the full-range face model (run on the whole image and, for big images, on
overlapping tiles so that small faces in group photos are found). Each face claims the part
of the selfie mask nearest to it, which gives its person box. A mask component with no face
(someone turned away) counts as a person only when the pose model confirms a body in it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.base import Detection, EngineSettings, LazyModel, module_available
from models.cutout.mediapipe import MediapipeCutout
from models.errors import BackendUnavailable
from models.imaging import rgb_array

Box = tuple[int, int, int, int]
Point = tuple[float, float]
DETECT_MAX_SIDE = 1280
MIN_COMPONENT = 0.01  # of the image area
FLOOR_CONFIDENCE = 0.05  # what the face model reports at all; sensitivity filters above it


def threshold_for(sensitivity: float) -> float:
    """Sensitivity 0.1-0.9 -> minimum confidence 0.9-0.1 (more sensitive, more found)."""
    return float(min(max(1.0 - sensitivity, 0.1), 0.9))


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class _Face:
    box: Box
    score: float
    eyes: tuple[Point, Point]


def _load_faces() -> Any:
    try:
        import mediapipe as mp

        return mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=FLOOR_CONFIDENCE)
    except (ImportError, AttributeError, RuntimeError) as exc:
        raise BackendUnavailable(f"mediapipe face detection could not load: {exc}",
                                 code="IMAGE_DETECTOR_UNAVAILABLE",
                                 message_ja="顔検出モデルを読み込めません。") from exc


def _load_pose() -> Any:
    import mediapipe as mp

    return mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                  min_detection_confidence=0.5)


# The face and pose graphs hold no settings, so every detector in the process shares one of
# each (each app's services build their own detector; loading the graphs per app was slow).
# A mediapipe graph runs one image at a time, hence one lock for both.
_FACES: LazyModel[Any] = LazyModel(_load_faces)
_POSE: LazyModel[Any] = LazyModel(_load_pose)
_GRAPH_LOCK = threading.Lock()
_SEGMENTER: LazyModel[MediapipeCutout] = LazyModel(MediapipeCutout)


class PersonDetector:
    """People and faces via mediapipe's bundled face, selfie and pose models."""

    name = "mediapipe"
    method = "mediapipe_face+selfie"  # what the detection report names as its method

    def __init__(self, settings: EngineSettings | None = None,
                 segmenter: MediapipeCutout | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._segmenter = segmenter

    @property
    def segmenter(self) -> MediapipeCutout:
        return self._segmenter or _SEGMENTER.get()

    def available(self) -> tuple[bool, str]:
        ok, why = module_available("mediapipe")
        return (True, "mediapipe face detection + selfie segmentation") if ok else (False, why)

    # -- faces ------------------------------------------------------------------------

    def _faces_in(self, rgb: np.ndarray, ox: int, oy: int, scale: float) -> list[_Face]:
        h, w = rgb.shape[:2]
        graph = _FACES.get()
        with _GRAPH_LOCK:
            result = graph.process(np.ascontiguousarray(rgb))
        faces = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            x0 = (ox + max(rel.xmin, 0.0) * w) / scale
            y0 = (oy + max(rel.ymin, 0.0) * h) / scale
            x1 = (ox + min(rel.xmin + rel.width, 1.0) * w) / scale
            y1 = (oy + min(rel.ymin + rel.height, 1.0) * h) / scale
            kp = det.location_data.relative_keypoints
            # mediapipe's keypoint 0 is the subject's right eye (left in the picture).
            eyes = tuple(((ox + kp[i].x * w) / scale, (oy + kp[i].y * h) / scale)
                         for i in (0, 1))
            faces.append(_Face((int(x0), int(y0), int(round(x1)), int(round(y1))),
                               float(det.score[0]), eyes))  # type: ignore[arg-type]
        return faces

    def faces(self, rgb: np.ndarray) -> list[_Face]:
        """All faces above the floor confidence, in original pixel coordinates."""
        import cv2

        h, w = rgb.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
        work = rgb if scale == 1.0 else cv2.resize(
            rgb, (max(int(w * scale), 1), max(int(h * scale), 1)), interpolation=cv2.INTER_AREA)
        wh, ww = work.shape[:2]
        found = self._faces_in(work, 0, 0, scale)
        if max(wh, ww) > 640:  # tiles find faces too small for the whole-image pass
            th, tw = int(wh * 0.6), int(ww * 0.6)
            for ty in (0, wh - th):
                for tx in (0, ww - tw):
                    found += self._faces_in(work[ty:ty + th, tx:tx + tw], tx, ty, scale)
        found.sort(key=lambda f: f.score, reverse=True)
        kept: list[_Face] = []
        for face in found:
            if all(_iou(face.box, k.box) < 0.3 for k in kept):
                kept.append(face)
        return kept

    # -- people -----------------------------------------------------------------------

    def detect(self, image: Any, sensitivity: float = 0.5) -> list[Detection]:
        """People found at ``sensitivity``, largest face first."""
        import cv2

        full = rgb_array(image)
        full_h, full_w = full.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(full_h, full_w))  # big photos: work smaller
        rgb = full if scale == 1.0 else cv2.resize(
            full, (max(int(full_w * scale), 1), max(int(full_h * scale), 1)),
            interpolation=cv2.INTER_AREA)
        h, w = rgb.shape[:2]
        threshold = threshold_for(sensitivity)
        faces = [f for f in self.faces(rgb) if f.score >= threshold]
        mask = self.segmenter.segment(rgb) > 0.5
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            mask.astype(np.uint8), connectivity=8)
        min_area = MIN_COMPONENT * h * w
        people: list[Detection] = []
        claimed: set[int] = set()
        centres = np.array([((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2)
                            for f in faces]) if faces else np.zeros((0, 2))
        for i, face in enumerate(faces):
            cx, cy = centres[i]
            fw, fh = face.box[2] - face.box[0], face.box[3] - face.box[1]
            # the component under the face (look at the face centre and just below the chin)
            label = 0
            for px, py in ((cx, cy), (cx, face.box[3] + 0.3 * fh)):
                xi, yi = int(min(max(px, 0), w - 1)), int(min(max(py, 0), h - 1))
                if labels[yi, xi] > 0:
                    label = int(labels[yi, xi])
                    break
            box = None
            if label:
                claimed.add(label)
                ys, xs = np.nonzero(labels == label)
                if len(faces) > 1:  # split shared components: each pixel to its nearest face
                    dist = (xs[:, None] - centres[None, :, 0]) ** 2 + \
                        (0.3 * (ys[:, None] - centres[None, :, 1])) ** 2
                    mine = np.argmin(dist, axis=1) == i
                    ys, xs = ys[mine], xs[mine]
                if len(xs):
                    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            if box is None:  # no mask under the face: a generous upper-body guess
                box = (int(max(cx - 1.6 * fw, 0)), int(max(face.box[1] - 0.6 * fh, 0)),
                       int(min(cx + 1.6 * fw, w)), int(min(face.box[3] + 3.0 * fh, h)))
            box = (min(box[0], face.box[0]), min(box[1], face.box[1]),
                   max(box[2], face.box[2]), max(box[3], face.box[3]))
            people.append(Detection(box, round(face.score, 4), face.box, face.eyes, "face"))
        for label in range(1, count):
            if label in claimed or stats[label, cv2.CC_STAT_AREA] < min_area:
                continue
            x, y, bw, bh = (int(v) for v in stats[label, :4])
            score = self._pose_score(rgb[y:y + bh, x:x + bw])
            if score >= threshold:
                people.append(Detection((x, y, x + bw, y + bh), round(score, 4), None, None,
                                        "pose"))
        people.sort(key=lambda d: (d.face_area, (d.bbox[2] - d.bbox[0]) * (d.bbox[3] - d.bbox[1])),
                    reverse=True)
        if scale != 1.0:
            people = [self._rescale(d, 1.0 / scale, full_w, full_h) for d in people]
        return people

    @staticmethod
    def _rescale(d: Detection, factor: float, width: int, height: int) -> Detection:
        def box(b: Box) -> Box:
            return (max(int(b[0] * factor), 0), max(int(b[1] * factor), 0),
                    min(int(round(b[2] * factor)), width), min(int(round(b[3] * factor)), height))

        eyes = None
        if d.eyes:
            (x0, y0), (x1, y1) = d.eyes
            eyes = ((x0 * factor, y0 * factor), (x1 * factor, y1 * factor))
        return Detection(box(d.bbox), d.confidence, box(d.face_bbox) if d.face_bbox else None,
                         eyes, d.source)

    def _pose_score(self, crop: np.ndarray) -> float:
        """How sure the pose model is that a body is in ``crop`` (0 when none)."""
        if crop.shape[0] < 32 or crop.shape[1] < 32:
            return 0.0
        graph = _POSE.get()
        with _GRAPH_LOCK:
            result = graph.process(np.ascontiguousarray(crop))
        if result.pose_landmarks is None:
            return 0.0
        upper = result.pose_landmarks.landmark[:13]  # head and shoulders
        return float(np.mean([lm.visibility for lm in upper]))

    def close(self) -> None:
        """Nothing to release: the graphs are the process's, shared by every detector."""
