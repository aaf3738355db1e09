"""The neural engines' weights: what each needs, where it comes from, under which licence.

Each engine that downloads weights declares its :class:`ModelSpec` in its own module and
names it in its registry entry (``models/registry.py``, ``weights=``); :data:`CATALOG` gathers
them from the registry. It is the single source for the model manager (``python -m
app.models``), the Models panel (what the engine does and its licence note, in English and
Japanese), ``/health`` and the engines' own availability checks, so they cannot disagree
about which files make an engine complete. Sizes are the released files' approximate sizes
(the exact size and sha256 are recorded when a file is downloaded or verified).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from models.base import EngineSettings
from models.registry import CAPABILITIES


@dataclass(frozen=True)
class Words:
    """One text in each language the studio speaks: both are required, so an engine cannot
    be registered with a label or a licence note its Japanese readers cannot read."""

    en: str
    ja: str

    def get(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


@dataclass(frozen=True)
class WeightFile:
    """One file of a checkpoint: its path in the hub repository and under the engine's folder."""

    remote: str
    local: str
    approx_mb: float
    required: bool = True  # False: downloaded too, but an engine can be complete without it
    alternatives: tuple[str, ...] = ()  # other names that stand for it (an older save format)

    def present(self, folder: Path) -> bool:
        return any((folder / n).is_file() for n in (self.local, *self.alternatives))


@dataclass(frozen=True)
class ModelSpec:
    name: str  # the engine's registry name
    title: str
    what: Words  # what it does, next to its name on the Models panel
    repo_id: str  # Hugging Face Hub repository the files come from
    subdir: tuple[str, ...]  # folder under the models dir
    files: tuple[WeightFile, ...]
    licence: str
    commercial_use: bool
    licence_note: Words
    source: str  # the original project
    revision: str = "main"

    @property
    def approx_mb(self) -> float:
        return sum(f.approx_mb for f in self.files)

    def folder(self, settings: EngineSettings) -> Path | None:
        return settings.weights_path(*self.subdir)

    def paths(self, settings: EngineSettings) -> list[Path] | None:
        folder = self.folder(settings)
        if folder is None:
            return None
        return [folder / n for f in self.files for n in (f.local, *f.alternatives)]

    def missing(self, settings: EngineSettings) -> list[str]:
        """The local names of required files not on disk (all when there is no models dir)."""
        folder = self.folder(settings)
        needed = [f for f in self.files if f.required]
        if folder is None:
            return [f.local for f in needed]
        return [f.local for f in needed if not f.present(folder)]


def _gather() -> dict[str, ModelSpec]:
    """The specs named by the registry's entries, in registry order. An engine module that is
    not in this build is left out (the Engines panel says so)."""
    found: dict[str, ModelSpec] = {}
    for engines in CAPABILITIES.values():
        for name, entry in engines.items():
            if entry.weights is None:
                continue
            module_name, _, attr = entry.weights.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError:
                continue
            model = getattr(module, attr)
            if not isinstance(model, ModelSpec) or model.name != name:
                raise TypeError(f"{entry.weights} is not the ModelSpec of engine '{name}'")
            if found.setdefault(name, model) is not model:
                raise TypeError(f"two engines named '{name}' name different weights")
    return found


class Catalog(Mapping[str, ModelSpec]):
    """The registered engines' weight specs by engine name, read from the registry on each
    look (a walk of a few dictionaries), so it never disagrees with it."""

    def __getitem__(self, name: str) -> ModelSpec:
        return _gather()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_gather())

    def __len__(self) -> int:
        return len(_gather())


CATALOG: Mapping[str, ModelSpec] = Catalog()


def spec(name: str) -> ModelSpec:
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(CATALOG)
        raise KeyError(f"unknown model '{name}' (known: {known})") from None
