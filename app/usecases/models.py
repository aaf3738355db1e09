"""The neural engines' weights, for ``/health`` and the Models panel: what each catalogue
model's files look like on this machine, and starting (or joining) a download of one.

A download never runs inside a user's job (see :mod:`models.downloads`): a person asks for
it here, and a background thread fetches and verifies the files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.base import EngineSettings
from models.catalog import CATALOG, ModelSpec
from models.downloads import DownloadState, manager_for
from models.errors import NotFound


def names() -> list[str]:
    """The catalogue's models, in its order."""
    return list(CATALOG)


def spec(name: str) -> ModelSpec:
    """A catalogue model's description: what it does and its licence note, in both
    languages (a model registered after start-up too)."""
    return CATALOG[name]


def rows(settings: EngineSettings) -> list[dict[str, Any]]:
    """One record per model: name, status (ready, missing ..., downloading, failed ...),
    size, licence, commercial use, source, folder, hashes."""
    return manager_for(settings).rows()


def states(settings: EngineSettings) -> dict[str, dict[str, object]]:
    """Each model's status and download state, as ``/health`` reports them."""
    return {r["name"]: {"status": r["status"], "download": r["download"]}
            for r in rows(settings)}


def start_download(settings: EngineSettings, name: str) -> DownloadState:
    """Start (or join) the background download of ``name``; a person asked, so a failed
    download's backoff does not hold it back. ``NotFound`` for a name not in the
    catalogue."""
    if name not in CATALOG:
        raise NotFound(f"No model {name!r} in the catalogue.", code="NOT_FOUND",
                       message_ja=f"カタログにモデル {name!r} はありません。",
                       details={"models": names()})
    return manager_for(settings).start(name, force=True)


def folder(settings: EngineSettings, name: str) -> Path | None:
    """Where ``name``'s weights live on this machine (None: no models folder set)."""
    return CATALOG[name].folder(settings)
