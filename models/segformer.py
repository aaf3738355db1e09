"""Person cutout with a SegFormer human parser (transformers), when its weights are present.

Any ``SegformerForSemanticSegmentation`` checkpoint whose labels include a background class
works (default: ``mattmdjaga/segformer_b2_clothes``, 18 clothing/body labels); the person is
everything that is not background: ``1 - P(background)``.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from models.base import EngineSettings
from models.gpu import gpu_task
from models.hf import HubModel, to_pixel_values
from models.mediapipe_selfie import matte_in_box

HUB_ID = "mattmdjaga/segformer_b2_clothes"
INPUT_SIZE = 512


class SegformerCutout:
    name = "segformer"
    subdir = "segformer"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._model = HubModel(self.settings, self.subdir, HUB_ID, "SegFormer",
                               "IMAGE_SEGMENTER_UNAVAILABLE", _load_weights)
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        return self._model.available()

    @gpu_task()
    def person_probability(self, rgb: np.ndarray) -> np.ndarray:
        import torch

        model, device = self._model.get()
        background = background_label(model)
        h, w = rgb.shape[:2]
        pixels = to_pixel_values(rgb, (INPUT_SIZE, INPUT_SIZE), device)
        with self._lock, torch.inference_mode():
            logits = model(pixel_values=pixels).logits
            logits = torch.nn.functional.interpolate(logits, size=(h, w), mode="bilinear",
                                                     align_corners=False)
            probs = logits.softmax(dim=1)[0, background]
        return (1.0 - probs.float().cpu().numpy()).astype(np.float32)

    def cutout(self, image: Any, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        return matte_in_box(image, box, self.person_probability)

    def close(self) -> None:
        self._model.clear()


def background_label(model: Any) -> int:
    """The index of the parser's background class (0 when none is named so)."""
    labels = {int(k): str(v).lower() for k, v in model.config.id2label.items()}
    return next((i for i, name in labels.items() if "background" in name), 0)


def _load_weights(source: str) -> Any:
    from transformers import SegformerForSemanticSegmentation

    return SegformerForSemanticSegmentation.from_pretrained(source)
