"""Face-mesh landmarks of a portrait: MediaPipe's 478 points and the indices the rig moves.

Why apart from the rig: detection (and the refusal of faces too small or turned away) is
also what the framing, the quality benches and the Wav2Lip crop need, without a rig.
"""

from __future__ import annotations

import threading

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
