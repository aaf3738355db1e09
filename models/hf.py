"""Where a transformers checkpoint comes from, and which torch device to use.

Weights load from ``STUDIO_MODELS_DIR/<subdir>`` (a ``save_pretrained`` folder); from the
Hugging Face Hub only when ``STUDIO_ALLOW_DOWNLOADS=1``. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from models.base import EngineSettings, LazyModel, module_available
from models.errors import BackendUnavailable

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def resolve_weights(settings: EngineSettings, subdir: str, hub_id: str) -> tuple[str | None, str]:
    """(source for from_pretrained, reason). None when neither local nor allowed to fetch."""
    for module in ("torch", "transformers"):
        ok, why = module_available(module)
        if not ok:
            return None, why
    local = settings.weights_path(subdir)
    if local is not None and (local / "config.json").is_file():
        return str(local), f"weights in {local}"
    if settings.allow_downloads:
        return hub_id, f"{hub_id} from the Hugging Face Hub (downloads allowed)"
    where = f"{local}" if local is not None else "STUDIO_MODELS_DIR (not set)"
    return None, f"no weights in {where}; set STUDIO_ALLOW_DOWNLOADS=1 to fetch {hub_id}"


def torch_device(settings: EngineSettings) -> str:
    from models.gpu import torch_device as pick

    return pick(settings.device)


class HubModel:
    """A transformers model loaded once, lazily, from ``STUDIO_MODELS_DIR/<subdir>`` or (only
    when downloads are allowed) the Hub; ``get()`` gives ``(model in eval mode, device)``."""

    def __init__(self, settings: EngineSettings, subdir: str, hub_id: str, label: str,
                 code: str, load: Callable[[str], Any]) -> None:
        self.settings = settings
        self.subdir = subdir
        self.hub_id = hub_id
        self.label = label
        self.code = code
        self._load_from = load
        self._lazy: LazyModel[tuple[Any, str]] = LazyModel(self._load)

    def available(self) -> tuple[bool, str]:
        source, why = resolve_weights(self.settings, self.subdir, self.hub_id)
        return source is not None, why

    def _load(self) -> tuple[Any, str]:
        source, why = resolve_weights(self.settings, self.subdir, self.hub_id)
        if source is None:
            raise BackendUnavailable(why, code=self.code,
                                     message_ja=f"{self.label} の重みがありません。")
        try:
            model = self._load_from(source)
        except (OSError, ValueError, ImportError, AttributeError) as exc:
            raise BackendUnavailable(f"{self.label} could not load from {source}: {exc}",
                                     code=self.code,
                                     message_ja=f"{self.label} を読み込めません。") from exc
        device = torch_device(self.settings)
        return model.to(device).eval(), device

    def get(self) -> tuple[Any, str]:
        return self._lazy.get()

    def clear(self) -> None:
        self._lazy.clear()


def to_pixel_values(rgb: np.ndarray, size: tuple[int, int], device: str) -> Any:
    """uint8 HxWx3 -> normalised 1x3xHxW float tensor at ``size`` (width, height)."""
    import cv2
    import torch

    resized = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    normed = (resized - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(normed.transpose(2, 0, 1)[None].copy()).to(device)
