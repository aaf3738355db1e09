"""The built-in talking-head renderer: always available, CPU only, offline.

MediaPipe face mesh (weights ship inside the mediapipe wheel) finds the face; the portrait is
framed for the output size and rigged once (:mod:`models.talking_head.face_rig`); the speech becomes
per-frame mouth shapes (:mod:`models.talking_head.visemes`) and seeded idle motion
(:mod:`models.talking_head.idle_motion`); frames stream into ffmpeg (:mod:`models.talking_head.mp4`).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.base import EngineSettings, ProgressFn, RenderRequest, no_progress
from models.errors import Cancelled, InvalidInput
from models.talking_head.face_mesh import detect_landmarks
from models.talking_head.face_rig import FaceRig
from models.talking_head.idle_motion import IdleTrack, idle_track
from models.talking_head.mp4 import Mp4Writer
from models.talking_head.placement import frame_portrait
from models.talking_head.visemes import MouthTrack, fit_to_photo, frame_count, mouth_track
from models.talking_head.warp import FrameControls

MIN_SIDE, MAX_SIDE = 64, 1920
BACKDROP = (232, 228, 222)


def portrait_rgb(image: object) -> np.ndarray:
    """A PIL image (RGB/RGBA/other) as RGB uint8; transparency over a soft studio backdrop."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise InvalidInput("The portrait must be an image.", code="VIDEO_IMAGE_INVALID",
                           message_ja="ポートレートは画像で指定してください。")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        w, h = rgba.size
        yy = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        back = (np.array(BACKDROP, np.float32) * (1.0 - 0.12 * yy)) * np.ones((h, w, 1), np.float32)
        arr = np.asarray(rgba).astype(np.float32)
        a = arr[..., 3:4] / 255.0
        flat: np.ndarray = (arr[..., :3] * a + back * (1 - a)).astype(np.uint8)
        return flat
    return np.asarray(image.convert("RGB"))


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    w, h = int(size[0]), int(size[1])
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE) or w % 2 or h % 2:
        raise InvalidInput(f"Unsupported video size {w}x{h} (even sides, {MIN_SIDE}-{MAX_SIDE}).",
                           code="VIDEO_INVALID_SIZE",
                           message_ja=f"対応していない動画サイズです: {w}x{h}",
                           details={"size": [w, h]})
    return w, h


@dataclass
class Performance:
    """A rigged portrait plus the per-frame controls of one speech: frames on demand."""

    rig: FaceRig
    mouth: MouthTrack
    idle: IdleTrack
    fps: int

    @property
    def frames(self) -> int:
        return self.mouth.frames

    def controls(self, i: int) -> FrameControls:
        m, d = self.mouth, self.idle
        return FrameControls(open=float(m.open[i]), spread=float(m.spread[i]),
                             round=float(m.round[i]), close=float(m.close[i]),
                             blink=float(d.blink[i]), dx=float(d.dx[i]), dy=float(d.dy[i]),
                             roll=float(d.roll[i]), breath=float(d.breath[i]))

    def iter_frames(self) -> Iterator[np.ndarray]:
        buffer = self.rig.base.copy()
        for i in range(self.frames):
            yield self.rig.render(self.controls(i), buffer)

    def mouth_box(self, i: int) -> tuple[int, int, int, int]:
        """A square box (x0, y0, x1, y1) around the lower face in frame ``i``."""
        c = self.controls(i)
        pts = self.rig.landmarks_for(c)
        centre = (pts[13] + pts[14]) / 2 + np.array([c.dx, c.dy - c.breath])
        half = 0.95 * self.rig.mouth_w
        x0, y0 = int(round(centre[0] - half)), int(round(centre[1] - half * 0.75))
        side = int(round(2 * half))
        return x0, y0, x0 + side, y0 + side


class LandmarkHead:
    """Engine ``builtin``: landmark mesh warp driven by the speech."""

    name = "builtin"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        import importlib.util

        for module in ("mediapipe", "cv2", "imageio_ffmpeg"):
            if importlib.util.find_spec(module) is None:
                return False, f"python package '{module}' not installed"
        return True, "mediapipe face mesh (bundled weights)"

    def landmarks(self, rgb: np.ndarray) -> np.ndarray:
        """Face-mesh points of ``rgb``, cached by content (a preview then a render)."""
        key = hashlib.sha1(rgb.tobytes()).hexdigest() + str(rgb.shape)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        points = detect_landmarks(rgb)
        with self._lock:
            self._cache[key] = points
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        return points

    def perform(self, request: RenderRequest) -> Performance:
        size = check_size(request.size)
        rgb = portrait_rgb(request.image)
        points = self.landmarks(rgb)
        base, moved = frame_portrait(rgb, points, size)
        rig = FaceRig(base, moved)
        mouth = fit_to_photo(mouth_track(request.speech, request.fps),
                             rig.photo_gap / rig.mouth_w)
        n = frame_count(request.speech.audio.duration, request.fps)
        idle = idle_track(n, request.fps, request.seed, rig.face_h, mouth.envelope)
        return Performance(rig, mouth, idle, request.fps)

    def render(self, request: RenderRequest, progress: ProgressFn = no_progress) -> Path:
        progress(0.0, "prepare")
        performance = self.perform(request)
        write_performance(performance, request, progress)
        return Path(request.output)

    def close(self) -> None:
        with self._lock:
            self._cache.clear()


def write_performance(performance: Performance, request: RenderRequest,
                      progress: ProgressFn = no_progress,
                      frames: Iterator[np.ndarray] | None = None) -> None:
    """Encode every frame of ``performance`` (or the given frames) with the speech audio."""
    n = performance.frames
    progress(0.05, "render")
    with Mp4Writer(Path(request.output), check_size(request.size), request.fps,
                   request.speech.audio) as writer:
        for i, frame in enumerate(frames if frames is not None else performance.iter_frames()):
            writer.write(frame)
            if i % 5 == 4 or i == n - 1:
                try:
                    progress(0.05 + 0.93 * (i + 1) / n, "render")
                except Cancelled:
                    raise
    progress(1.0, "encode")
