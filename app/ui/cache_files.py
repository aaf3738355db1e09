"""Gradio's output cache, written so that a download never sees half a file.

Gradio names a cached output by the hash of its bytes and rewrites it in place
(``Path.write_bytes``: truncate, then write) every time the same output is produced again. When
two people (or one script's two calls) get the same image, a download of the first answer can
read the file while the second answer is rewriting it: the client then gets 0 bytes of a
200 kB image ("Too little data for declared Content-Length"). A file whose name is its content's
hash never needs rewriting, so here it is written once, through a temporary file and an atomic
rename, and left alone afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from gradio import processing_utils
from PIL import Image

_INSTALLED = False


def write_once(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` atomically, unless it already holds that many bytes (its
    folder is the hash of the bytes, so same size means same content)."""
    try:
        if path.stat().st_size == len(data):
            return
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_pil_to_cache(img: Image.Image, cache_dir: str, name: str = "image",
                      format: str = "webp") -> str:
    # Gradio's own encoder (same bytes as before: the hash names the file), unannotated there
    data: bytes = processing_utils.encode_pil_to_bytes(img, format)  # type: ignore[no-untyped-call]
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    write_once(path, data)
    return str(path)


def save_bytes_to_cache(data: bytes, file_name: str, cache_dir: str) -> str:
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    if not Path(file_name).suffix:
        file_name += processing_utils.detect_audio_format(data)
    path = (folder / Path(file_name).name).resolve()
    write_once(path, data)
    return str(path)


def install() -> None:
    """Route Gradio's components (they call these through the module) to the versions above."""
    global _INSTALLED
    if _INSTALLED:
        return
    replacements: dict[str, Callable[..., str]] = {
        "save_pil_to_cache": save_pil_to_cache, "save_bytes_to_cache": save_bytes_to_cache}
    for name, function in replacements.items():
        setattr(processing_utils, name, function)
    _INSTALLED = True
