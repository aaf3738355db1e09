"""Person cutout with BiRefNet, when its weights are present in ``STUDIO_MODELS_DIR/birefnet``.

Two forms of the released model run:

- **ONNX** (``birefnet/model.onnx`` or ``birefnet/onnx/model.onnx``: the exports BiRefNet's
  releases publish, e.g. ``BiRefNet-general-bb_swin_v1_tiny-epoch_232.onnx`` saved under that
  name) through onnxruntime, a studio dependency. Preferred: it needs nothing else. Its last
  output is the matte logits, as the original's ``tutorials/BiRefNet_pth2onnx.ipynb`` reads it
  (``run(None, ...)[-1]`` then sigmoid; the exports have one output).
- **The hub checkpoint** (``ZhengPeng7/BiRefNet_lite``: config.json + model.safetensors + its
  own modelling code, loaded with ``trust_remote_code`` through the config's ``auto_map``; the
  model manager fetches it). That code imports timm, einops, kornia and torchvision;
  ``available()`` reads its imports and names the missing ones (PyPI's torchvision does not
  load beside the CPU torch build the studio pins, so on such a machine use the ONNX form).

Input 1024x1024 RGB, scaled to [0, 1] and ImageNet-normalised (the original's ``ToTensor`` +
``Normalize``); the matte is the sigmoid of the logits, resized back.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from models.base import EngineSettings, LazyModel, module_available
from models.catalog import ModelSpec, WeightFile, Words
from models.gpu import gpu_task, live
from models.hf import IMAGENET_MEAN, IMAGENET_STD, HubModel, LoadFailure, to_pixel_values
from models.imaging import matte_in_box

INPUT_SIZE = 1024

WEIGHTS = ModelSpec(
    name="birefnet", title="BiRefNet lite (Swin-T) person cutout",
    what=Words("cutout", "切り抜き"),
    repo_id="ZhengPeng7/BiRefNet_lite", subdir=("birefnet",),
    files=(WeightFile("config.json", "config.json", 0.001, required=False),
           WeightFile("BiRefNet_config.py", "BiRefNet_config.py", 0.001, required=False),
           WeightFile("birefnet.py", "birefnet.py", 0.1, required=False),
           # the released ONNX export stands for the whole checkpoint (see the module doc)
           WeightFile("model.safetensors", "model.safetensors", 178.7,
                      alternatives=("pytorch_model.bin", "model.onnx", "onnx/model.onnx"))),
    licence="MIT", commercial_use=True,
    licence_note=Words("MIT: free for commercial and non-commercial use.",
                       "MIT: 商用・非商用とも自由に使えます。"),
    source="https://github.com/ZhengPeng7/BiRefNet")


class BiRefNetCutout:
    name = "birefnet"

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._model = HubModel(self.settings, self.name, "BiRefNet",
                               "IMAGE_SEGMENTER_UNAVAILABLE", _load_weights, half=True)
        self._onnx: LazyModel[Any] = LazyModel(self._load_onnx)
        self._onnx_lock = threading.Lock()
        self._onnx_failure = LoadFailure()

    def onnx_file(self) -> Path | None:
        folder = self.settings.weights_path("birefnet")
        if folder is None or not folder.is_dir():
            return None
        for name in ("model.onnx", "onnx/model.onnx"):
            if (folder / name).is_file():
                return folder / name
        return None

    def available(self) -> tuple[bool, str]:
        path = self.onnx_file()
        if path is not None:
            ok, why = module_available("onnxruntime")
            failed = self._onnx_failure.reason([path])
            if failed:
                return False, failed
            return (True, f"BiRefNet ONNX {path}") if ok else (False, why)
        return self._model.available()

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        if self.onnx_file() is not None:
            return self._predict_onnx(rgb)
        self._model.get()
        return birefnet_matte(self._model.key, rgb)

    def _load_onnx(self) -> Any:
        import onnxruntime as ort

        from models.gpu import torch_device

        path = self.onnx_file()
        providers = ["CPUExecutionProvider"]
        if torch_device(self.settings.device) == "cuda" and \
                "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        assert path is not None
        return self._onnx_failure.guard(
            [path], f"BiRefNet could not load {path}",
            lambda: ort.InferenceSession(str(path), providers=providers),
            code="IMAGE_SEGMENTER_UNAVAILABLE", message_ja="BiRefNet を読み込めません。")

    def _predict_onnx(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        session = self._onnx.get()
        h, w = rgb.shape[:2]
        resized = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        pixels = ((resized.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD)
        feed = {session.get_inputs()[0].name: pixels.transpose(2, 0, 1)[None].copy()}
        with self._onnx_lock:
            logits = session.run(None, feed)[-1][0, 0].astype(np.float32)
        logits = cv2.resize(logits, (w, h), interpolation=cv2.INTER_LINEAR)
        matte: np.ndarray = (1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))).astype(np.float32)
        return matte

    def cutout(self, image: Any, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        return matte_in_box(image, box, self.predict)

    def close(self) -> None:
        self._model.clear()
        self._onnx.clear()


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


def post_init_shim(cls: type[Any]) -> type[Any]:
    """transformers 5 needs every model's ``__init__`` to end in ``post_init()`` (it sets
    ``all_tied_weights_keys``, read while loading); BiRefNet's hub code was written for 4.x
    and skips it. The subclass calls it when the original did not."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        cls.__init__(self, *args, **kwargs)
        if not hasattr(self, "all_tied_weights_keys"):
            self.post_init()

    return type(cls.__name__, (cls,), {"__init__": __init__, "__module__": cls.__module__})
