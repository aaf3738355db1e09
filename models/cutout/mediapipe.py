"""Person cutout with mediapipe 0.10.21's selfie segmentation (its weights ship in the wheel).

Always available offline; a soft 256x256-resolution mask that closed-form matting then
sharpens. With a person box it segments a padded crop around that person, so the person fills
the model's input and small people in big photos still get a usable mask.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from models.base import EngineSettings, LazyModel, module_available
from models.errors import BackendUnavailable
from models.imaging import Box, padded_box, rgb_array


class MediapipeCutout:
    """Selfie segmentation (general model, 256x256 input)."""

    name = "mediapipe"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._model: LazyModel[Any] = LazyModel(self._load)
        self._lock = threading.Lock()  # a mediapipe graph runs one image at a time

    def available(self) -> tuple[bool, str]:
        ok, why = module_available("mediapipe")
        return (True, "mediapipe selfie segmentation (bundled weights)") if ok else (False, why)

    def _load(self) -> Any:
        try:
            import mediapipe as mp

            return mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        except (ImportError, AttributeError, RuntimeError) as exc:
            raise BackendUnavailable(
                f"mediapipe selfie segmentation could not load: {exc}",
                code="IMAGE_SEGMENTER_UNAVAILABLE",
                message_ja="mediapipe の人物セグメンテーションを読み込めません。") from exc

    def segment(self, rgb: np.ndarray) -> np.ndarray:
        """Mask of everyone in ``rgb`` (uint8 HxWx3), float32 HxW in [0, 1]."""
        model = self._model.get()
        with self._lock:
            result = model.process(np.ascontiguousarray(rgb))
        mask = result.segmentation_mask
        if mask is None:
            return np.zeros(rgb.shape[:2], np.float32)
        return np.clip(np.asarray(mask, np.float32), 0.0, 1.0)

    def cutout(self, image: Any, box: Box | None = None) -> np.ndarray:
        rgb = rgb_array(image)
        h, w = rgb.shape[:2]
        if box is None:
            return self.segment(rgb)
        x0, y0, x1, y1 = padded_box(box, w, h)
        matte = np.zeros((h, w), np.float32)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return matte
        matte[y0:y1, x0:x1] = self.segment(rgb[y0:y1, x0:x1])
        return matte

    def close(self) -> None:
        if self._model.loaded:
            self._model.get().close()
            self._model.clear()

