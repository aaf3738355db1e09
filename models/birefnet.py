"""Person cutout with BiRefNet (transformers, remote code), when its weights are present.

BiRefNet is not a transformers built-in: its checkpoints (``ZhengPeng7/BiRefNet``,
``BiRefNet_lite``) ship their modelling code, loaded with ``trust_remote_code=True`` through
``AutoModelForImageSegmentation``. Only a local folder under ``STUDIO_MODELS_DIR/birefnet`` or
the Hub with downloads allowed is used. Input 1024x1024, ImageNet-normalised; the model's last
output is the matte logits.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from models.base import EngineSettings
from models.gpu import gpu_task
from models.hf import HubModel, to_pixel_values
from models.mediapipe_selfie import matte_in_box

HUB_ID = "ZhengPeng7/BiRefNet_lite"
INPUT_SIZE = 1024


class BiRefNetCutout:
    name = "birefnet"
    subdir = "birefnet"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._model = HubModel(self.settings, self.subdir, HUB_ID, "BiRefNet", "IMAGE_SEGMENTER_UNAVAILABLE",
                               _load_weights)
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        return self._model.available()

    @gpu_task()
    def predict(self, rgb: np.ndarray) -> np.ndarray:
        import torch

        model, device = self._model.get()
        h, w = rgb.shape[:2]
        pixels = to_pixel_values(rgb, (INPUT_SIZE, INPUT_SIZE), device)
        dtype = next(model.parameters()).dtype
        with self._lock, torch.inference_mode():
            outputs = model(pixels.to(dtype))
        logits = outputs[-1] if isinstance(outputs, list | tuple) else outputs
        if hasattr(logits, "logits"):
            logits = logits.logits
        probs = torch.nn.functional.interpolate(logits.float(), size=(h, w), mode="bilinear",
                                                align_corners=False).sigmoid()
        return probs[0, 0].cpu().numpy().astype(np.float32)

    def cutout(self, image: Any, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        return matte_in_box(image, box, self.predict)

    def close(self) -> None:
        self._model.clear()


def _load_weights(source: str) -> Any:
    from transformers import AutoModelForImageSegmentation

    return AutoModelForImageSegmentation.from_pretrained(source, trust_remote_code=True)
