"""Where a transformers checkpoint comes from, and which torch device to use.

Weights load from ``STUDIO_MODELS_DIR/<subdir>`` (a ``save_pretrained`` folder) only; with
``STUDIO_ALLOW_DOWNLOADS=1`` the model manager (``models/downloads.py``) fetches them there in
the background. Nothing here imports torch.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from models import catalog
from models.base import EngineSettings, LazyModel, module_available
from models.downloads import manager_for
from models.errors import BackendUnavailable
from models.gpu import drop, half_precision, keep
from models.gpu import torch_device as pick_device

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


_IMPORTS: dict[tuple[tuple[str, int, int], ...], list[str]] = {}


def code_imports(folder: Path) -> list[str]:
    """Top-level packages imported by a checkpoint's own modelling code (``*.py`` beside the
    weights, loaded with ``trust_remote_code``), standard library left out. Parsed once per
    version of the files (``available()`` runs on every /health)."""
    files = sorted(folder.glob("*.py"))
    signature = files_signature(files)
    if signature not in _IMPORTS:
        _IMPORTS[signature] = _parse_imports(files)
    return _IMPORTS[signature]


def _parse_imports(files: list[Path]) -> list[str]:
    names: set[str] = set()
    for path in files:
        try:
            tree = ast.parse(path.read_text("utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return sorted(n for n in names if n not in sys.stdlib_module_names and n != "__future__")


def missing_imports(modules: Iterable[str]) -> list[str]:
    return [m for m in modules if not module_available(m)[0]]


def files_signature(paths: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """What identifies the weights on disk: a load error is remembered only for these."""
    out = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)


T = TypeVar("T")


class LoadFailure:
    """A load error remembered for the files it happened on. ``available()`` reports it
    until those files change (a new download, a replaced file), so the chain skips a broken
    checkpoint at once instead of every job trying it and failing again."""

    def __init__(self) -> None:
        self._error: tuple[tuple[tuple[str, int, int], ...], str] | None = None

    def reason(self, paths: Iterable[Path]) -> str | None:
        """Why the last load of exactly these files failed; None if it did not."""
        if self._error is not None and self._error[0] == files_signature(paths):
            return self._error[1]
        return None

    def guard(self, paths: Iterable[Path], what: str, load: Callable[[], T], *, code: str,
              message_ja: str) -> T:
        """``load()``; any error becomes BackendUnavailable("<what>: <error>") and is
        remembered for ``paths``, so whatever breaks a load, the chain moves on."""
        signature = files_signature(paths)
        try:
            result = load()
        except Exception as exc:  # whatever breaks a load, the chain moves on
            reason = f"{what}: {type(exc).__name__}: {exc}"[:500]
            self._error = (signature, reason)
            raise BackendUnavailable(reason, code=code, message_ja=message_ja) from exc
        self._error = None
        return result


def torch_device(settings: EngineSettings) -> str:
    return pick_device(settings.device)


class HubModel:
    """A transformers model loaded once, lazily, from the catalogue entry ``name``'s folder
    under ``STUDIO_MODELS_DIR`` (fetched there in the background by the model manager when
    downloads are allowed; never inside a job). ``get()`` gives ``(model in eval mode,
    device)``. Any load error becomes :class:`BackendUnavailable` with its reason, and is
    reported by ``available()`` until the files change."""

    def __init__(self, settings: EngineSettings, name: str, label: str, code: str,
                 load: Callable[[str], Any], *, half: bool = False) -> None:
        self.settings = settings
        self.half = half  # float16 on CUDA is safe for this network
        self.key = f"{name}:{id(self)}"  # where GPU functions find it (models.gpu.live)
        self.spec = catalog.spec(name)
        self.label = label
        self.code = code
        self._load_from = load
        self._lazy: LazyModel[tuple[Any, str]] = LazyModel(self._load)
        self._failure = LoadFailure()

    def available(self) -> tuple[bool, str]:
        missing = missing_imports(("torch", "transformers"))
        if missing:
            return False, f"python package '{missing[0]}' not installed"
        ok, why = manager_for(self.settings).availability(self.spec.name)
        if not ok:
            return ok, why
        folder = self.spec.folder(self.settings)
        assert folder is not None  # availability() is True only with a folder
        missing = missing_imports(code_imports(folder))
        if missing:
            return False, (f"{self.label}'s own code in {folder} imports python packages that "
                           f"are not installed: {', '.join(missing)}")
        failed = self._failure.reason(self.spec.paths(self.settings) or [])
        if failed:
            return False, failed
        return True, why

    def _load(self) -> tuple[Any, str]:
        ok, why = self.available()
        if not ok:
            raise BackendUnavailable(why, code=self.code,
                                     message_ja=f"{self.label} の重みがありません。")
        folder = str(self.spec.folder(self.settings))
        device = torch_device(self.settings)

        def load() -> Any:
            model = self._load_from(folder).to(device).eval()
            return model.half() if self.half and half_precision(device) else model

        model = self._failure.guard(
            self.spec.paths(self.settings) or [], f"{self.label} could not load from {folder}",
            load, code=self.code, message_ja=f"{self.label} を読み込めません。")
        keep(self.key, (model, device))
        return model, device

    def get(self) -> tuple[Any, str]:
        return self._lazy.get()

    def clear(self) -> None:
        drop(self.key)
        self._lazy.clear()


def to_pixel_values(rgb: np.ndarray, size: tuple[int, int], device: str) -> Any:
    """uint8 HxWx3 -> normalised 1x3xHxW float tensor at ``size`` (width, height)."""
    import cv2
    import torch

    resized = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    normed = (resized - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(normed.transpose(2, 0, 1)[None].copy()).to(device)
