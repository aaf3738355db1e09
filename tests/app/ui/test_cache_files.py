"""Gradio's cached outputs are written once and atomically (app/ui/cache_files.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from gradio import processing_utils
from PIL import Image

from app.ui import cache_files


def _image(seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_the_same_output_again_leaves_the_cached_file_alone(tmp_path: Path) -> None:
    cache_files.install()
    first = processing_utils.save_pil_to_cache(_image(1), str(tmp_path), format="png")
    before = Path(first).stat()
    again = processing_utils.save_img_array_to_cache(np.asarray(_image(1)), str(tmp_path),
                                                     format="png")
    assert again == first
    after = Path(first).stat()
    # not rewritten: the same inode and modification time (Gradio's own version truncates it)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    other = processing_utils.save_pil_to_cache(_image(2), str(tmp_path), format="png")
    assert other != first
    assert Image.open(other).size == (96, 96)
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_reader_never_sees_a_short_file_while_the_same_output_is_saved_again(
        tmp_path: Path) -> None:
    cache_files.install()
    data = processing_utils.encode_pil_to_bytes(_image(3), "png")
    path = processing_utils.save_bytes_to_cache(data, "portrait.png", str(tmp_path))
    stop = threading.Event()
    sizes: list[int] = []

    def read() -> None:
        while not stop.is_set():
            sizes.append(len(Path(path).read_bytes()))

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(300):
        assert processing_utils.save_bytes_to_cache(data, "portrait.png", str(tmp_path)) == path
    stop.set()
    reader.join()
    assert sizes
    assert set(sizes) == {len(data)}
