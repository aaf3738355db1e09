"""Matte refinement with SAM2 (transformers ``Sam2Model``), when its weights are present.

SAM2 is prompted with the person box, a positive point deep inside the coarse mask, and the
coarse mask itself (as low-resolution logits). Its mask fixes the coarse model's gross errors
(a missed arm, a chair taken for a shoulder); SAM2's own edges are hard, so the soft edge is
then solved by closed-form matting on a trimap from the fused mask. A SAM2 mask that disagrees
wildly with the coarse one (less than half or more than twice its area) is not trusted.

Preprocessing is done here (resize to the model's square input, ImageNet normalisation) as
``Sam2ImageProcessor`` does, because that class needs torchvision, which the studio does not
install.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.base import EngineSettings
from models.catalog import ModelSpec, WeightFile, Words
from models.gpu import gpu_task, live
from models.hf import HubModel, to_pixel_values
from models.imaging import rgb_array
from models.refine.closed_form import as_float_rgb, refine_matte

MASK_LOGIT_SCALE = 12.0

WEIGHTS = ModelSpec(
    name="sam2", title="SAM 2.1 Hiera tiny",
    what=Words("edge refinement", "輪郭の精密化"),
    repo_id="facebook/sam2.1-hiera-tiny", subdir=("sam2",),
    files=(WeightFile("config.json", "config.json", 0.005),
           WeightFile("model.safetensors", "model.safetensors", 155.9,
                      alternatives=("pytorch_model.bin",))),
    licence="Apache-2.0", commercial_use=True,
    licence_note=Words("Apache-2.0: free for commercial and non-commercial use.",
                       "Apache-2.0: 商用・非商用とも自由に使えます。"),
    source="https://github.com/facebookresearch/sam2")


def _interior_point(mask: np.ndarray) -> tuple[float, float] | None:
    """The mask pixel farthest from its edge (x, y)."""
    import cv2

    if not mask.any():
        return None
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(x), float(y)


class Sam2Refiner:
    name = "sam2"
    prompted = True  # segments the person again from their box

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._model = HubModel(self.settings, self.name, "SAM2", "IMAGE_REFINER_UNAVAILABLE",
                               _load_weights)

    def available(self) -> tuple[bool, str]:
        return self._model.available()

    def segment(self, rgb: np.ndarray, matte: np.ndarray,
                box: tuple[int, int, int, int]) -> np.ndarray:
        """SAM2's probability mask (float32 HxW) for the prompted person."""
        self._model.get()
        return sam2_mask(self._model.key, rgb, matte, box)

    def refine(self, image: Any, matte: np.ndarray,
               box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        rgb = rgb_array(image)
        if rgb.shape[:2] != matte.shape:
            raise ValueError(f"image {rgb.shape[:2]} and matte {matte.shape} differ in size")
        coarse = matte > 0.5
        if box is None:
            ys, xs = np.nonzero(coarse)
            if not len(xs):
                return matte.astype(np.float32)
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        sam = self.segment(rgb, matte, box)
        area, sam_area = coarse.sum(), (sam > 0.5).sum()
        fused = matte
        if area and 0.5 * area <= sam_area <= 2.0 * area:
            # keep SAM2's decision where it is sure, the coarse soft value where it is not
            fused = np.where(np.abs(sam - 0.5) > 0.4, sam, matte).astype(np.float32)
        return refine_matte(as_float_rgb(rgb), fused)

    def close(self) -> None:
        self._model.clear()


@gpu_task()
def sam2_mask(key: str, rgb: np.ndarray, matte: np.ndarray,
              box: tuple[int, int, int, int]) -> np.ndarray:
    """SAM2 prompted with the box, an interior point and the coarse mask, with the model kept
    under ``key`` (module-level, so ZeroGPU pickles only a key and arrays)."""
    import cv2
    import torch

    (model, device), lock = live(key)
    config = model.config
    size = int(config.prompt_encoder_config.image_size)
    mask_side = 4 * size // int(config.prompt_encoder_config.patch_size)
    h, w = rgb.shape[:2]
    sx, sy = size / w, size / h
    pixels = to_pixel_values(rgb, (size, size), device)
    x0, y0, x1, y1 = box
    boxes = torch.tensor([[[x0 * sx, y0 * sy, x1 * sx, y1 * sy]]], dtype=torch.float32,
                         device=device)
    low = cv2.resize(matte.astype(np.float32), (mask_side, mask_side),
                     interpolation=cv2.INTER_AREA)
    mask_logits = torch.from_numpy(
        ((low - 0.5) * 2 * MASK_LOGIT_SCALE)[None, None].copy()).to(device)
    kwargs: dict[str, Any] = {}
    point = _interior_point(matte > 0.5)
    if point is not None:
        kwargs["input_points"] = torch.tensor([[[[point[0] * sx, point[1] * sy]]]],
                                              dtype=torch.float32, device=device)
        kwargs["input_labels"] = torch.tensor([[[1]]], dtype=torch.long, device=device)
    with lock, torch.inference_mode():
        out = model(pixel_values=pixels, input_boxes=boxes, input_masks=mask_logits,
                    multimask_output=False, **kwargs)
    logits = out.pred_masks[0, 0, 0].float().cpu().numpy()
    full = cv2.resize(logits, (w, h), interpolation=cv2.INTER_LINEAR)
    probability: np.ndarray = (1.0 / (1.0 + np.exp(-np.clip(full, -30, 30)))).astype(np.float32)
    return probability


def _load_weights(source: str) -> Any:
    """``AutoModelForMaskGeneration`` picks the class transformers maps the checkpoint's type
    to for prompted masks: ``Sam2Model`` for both ``sam2`` and ``sam2_video`` configs (the
    Hub's ``facebook/sam2.1-hiera-tiny`` is a ``sam2_video`` checkpoint; its memory-attention
    weights are for tracking and are dropped by the class's own ignore list)."""
    from transformers import AutoModelForMaskGeneration

    return AutoModelForMaskGeneration.from_pretrained(source)
