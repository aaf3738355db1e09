"""Downloads under names people recognise, in their language: ``video-message-2026-12-05-1030.mp4``
or ``ビデオメッセージ-2026-12-05-1030.mp4`` rather than the storage key's random hex (Gradio
serves a file under its own base name)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from app.ui.text import plain, register

register(en={"download.message": "video-message", "download.video": "talking-video",
             "download.mix": "music-mix"},
         ja={"download.message": "ビデオメッセージ", "download.video": "動画",
             "download.mix": "BGMミックス"})

FOLDER = "studio-downloads"


def named(path: str, kind: str, lang: str = "en", when: float | None = None) -> str:
    """``path`` again as ``<the kind's name>-<local date and time><suffix>`` in a folder of
    its own (a hard link where the file system allows, else a copy); ``kind``: message,
    video or mix."""
    stem = plain(f"download.{kind}", lang)
    stamp = time.strftime("%Y-%m-%d-%H%M", time.localtime(when))
    folder = Path(tempfile.gettempdir()) / FOLDER / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stem}-{stamp}{Path(path).suffix}"
    try:
        os.link(path, target)
    except OSError:
        shutil.copyfile(path, target)
    return str(target)
