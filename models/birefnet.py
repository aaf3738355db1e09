"""Person cutout with BiRefNet (transformers, remote code), when its weights are present.

BiRefNet is not a transformers built-in: its checkpoints (``ZhengPeng7/BiRefNet``,
``BiRefNet_lite``) ship their modelling code, loaded with ``trust_remote_code=True`` through
the config's ``auto_map``. Only a local folder under ``STUDIO_MODELS_DIR/birefnet`` is used
(the model manager fills it). That code imports timm, einops, kornia and torchvision;
``available()`` reads its imports and says which are missing (``pip install -e .[neural]``). Input 1024x1024, ImageNet-normalised; the model's last
output is the matte logits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.base import EngineSettings
from models.gpu import gpu_task, live
from models.hf import HubModel, to_pixel_values
from models.mediapipe_selfie import matte_in_box

INPUT_SIZE = 1024


class BiRefNetCutout:
    name = "birefnet"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._model = HubModel(self.settings, self.name, "BiRefNet",
                               "IMAGE_SEGMENTER_UNAVAILABLE", _load_weights, half=True)

    def available(self) -> tuple[bool, str]:
        return self._model.available()

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        self._model.get()
        return birefnet_matte(self._model.key, rgb)

    def cutout(self, image: Any, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        return matte_in_box(image, box, self.predict)

    def close(self) -> None:
        self._model.clear()


@gpu_task()
def birefnet_matte(key: str, rgb: np.ndarray) -> np.ndarray:
    """The matte (float32 HxW) of ``rgb`` with the model kept under ``key``."""
    import torch

    (model, device), lock = live(key)
    h, w = rgb.shape[:2]
    pixels = to_pixel_values(rgb, (INPUT_SIZE, INPUT_SIZE), device)
    dtype = next(model.parameters()).dtype
    with lock, torch.inference_mode():
        outputs = model(pixels.to(dtype))
    logits = outputs[-1] if isinstance(outputs, list | tuple) else outputs
    if hasattr(logits, "logits"):
        logits = logits.logits
    probs = torch.nn.functional.interpolate(logits.float(), size=(h, w), mode="bilinear",
                                            align_corners=False).sigmoid()
    return probs[0, 0].cpu().numpy().astype(np.float32)


def _load_weights(source: str) -> Any:
    from transformers import AutoConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    config = AutoConfig.from_pretrained(source, trust_remote_code=True)
    reference = (getattr(config, "auto_map", None) or {}).get("AutoModelForImageSegmentation")
    if not reference:
        raise ValueError(f"{source}/config.json has no auto_map for AutoModelForImageSegmentation")
    cls = get_class_from_dynamic_module(reference, source)
    return post_init_shim(cls).from_pretrained(source, config=config)


def post_init_shim(cls: type) -> type:
    """transformers 5 needs every model's ``__init__`` to end in ``post_init()`` (it sets
    ``all_tied_weights_keys``, read while loading); BiRefNet's hub code was written for 4.x
    and skips it. The subclass calls it when the original did not."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        cls.__init__(self, *args, **kwargs)
        if not hasattr(self, "all_tied_weights_keys"):
            self.post_init()

    return type(cls.__name__, (cls,), {"__init__": __init__, "__module__": cls.__module__})
