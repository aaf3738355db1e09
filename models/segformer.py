"""Person cutout with a SegFormer human parser (transformers), when its weights are present.

Any ``SegformerForSemanticSegmentation`` checkpoint whose labels include a background class
works (default: ``mattmdjaga/segformer_b2_clothes``, 18 clothing/body labels); the person is
everything that is not background: ``1 - P(background)``.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from models.base import EngineSettings, LazyModel
from models.errors import BackendUnavailable
from models.hf import resolve_weights, to_pixel_values, torch_device
from models.mediapipe_selfie import padded_box, rgb_array

HUB_ID = "mattmdjaga/segformer_b2_clothes"
INPUT_SIZE = 512


class SegformerCutout:
    name = "segformer"
    subdir = "segformer"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._model: LazyModel[tuple[Any, int, str]] = LazyModel(self._load)
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        source, why = resolve_weights(self.settings, self.subdir, HUB_ID)
        return source is not None, why

    def _load(self) -> tuple[Any, int, str]:
        source, why = resolve_weights(self.settings, self.subdir, HUB_ID)
        if source is None:
            raise BackendUnavailable(why, code="IMAGE_SEGMENTER_UNAVAILABLE",
                                     message_ja="SegFormer の重みがありません。")
        try:
            from transformers import SegformerForSemanticSegmentation

            model = SegformerForSemanticSegmentation.from_pretrained(source)
        except (OSError, ValueError, ImportError) as exc:
            raise BackendUnavailable(f"SegFormer could not load from {source}: {exc}",
                                     code="IMAGE_SEGMENTER_UNAVAILABLE",
                                     message_ja="SegFormer を読み込めません。") from exc
        labels = {int(k): str(v).lower() for k, v in model.config.id2label.items()}
        background = next((i for i, name in labels.items() if "background" in name), 0)
        device = torch_device(self.settings)
        return model.to(device).eval(), background, device

    def person_probability(self, rgb: np.ndarray) -> np.ndarray:
        import torch

        model, background, device = self._model.get()
        h, w = rgb.shape[:2]
        pixels = to_pixel_values(rgb, (INPUT_SIZE, INPUT_SIZE), device)
        with self._lock, torch.inference_mode():
            logits = model(pixel_values=pixels).logits
            logits = torch.nn.functional.interpolate(logits, size=(h, w), mode="bilinear",
                                                     align_corners=False)
            probs = logits.softmax(dim=1)[0, background]
        return (1.0 - probs.float().cpu().numpy()).astype(np.float32)

    def cutout(self, image: Any, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        rgb = rgb_array(image)
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = padded_box(box, w, h) if box else (0, 0, w, h)
        matte = np.zeros((h, w), np.float32)
        if x1 - x0 >= 4 and y1 - y0 >= 4:
            matte[y0:y1, x0:x1] = self.person_probability(rgb[y0:y1, x0:x1])
        return matte

    def close(self) -> None:
        self._model.clear()
