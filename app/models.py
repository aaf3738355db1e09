"""``python -m app.models list|download|verify [name]``: the neural engines' weights.

A thin front end over the model manager (``models/downloads.py``), which the Models panel and
the engines use too. Settings come from ``STUDIO_*`` variables as the app reads them; weights
go to ``STUDIO_MODELS_DIR`` (default ``{STUDIO_DATA_DIR}/models``); ``HF_ENDPOINT`` picks the
hub mirror. Downloads here are explicit, so they run whatever ``STUDIO_ALLOW_DOWNLOADS`` says.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace

from app.config import SettingsError, load_settings
from models.catalog import CATALOG
from models.downloads import DownloadError, ModelManager


def _names(name: str | None) -> list[str]:
    if name is None:
        return list(CATALOG)
    if name not in CATALOG:
        raise SystemExit(f"unknown model '{name}' (known: {', '.join(CATALOG)})")
    return [name]


def cmd_list(manager: ModelManager, names: list[str]) -> int:
    for row in manager.rows():
        if row["name"] not in names:
            continue
        print(f"{row['name']:<10} {row['status']:<40} {row['size_mb']:>7.1f} MB  {row['title']}")
        print(f"{'':<10} licence: {row['licence']}"
              f"{'' if row['commercial_use'] else '  -- NOT FOR COMMERCIAL USE'}")
        print(f"{'':<10} {row['licence_note']}")
        print(f"{'':<10} source: {row['source']} (files from hub repo {row['repo']})")
        print(f"{'':<10} into: {row['folder']}  files: {', '.join(row['files'])}")
        for file, sha in row["sha256"].items():
            print(f"{'':<10} sha256 {file}: {sha}")
    return 0


def cmd_download(manager: ModelManager, names: list[str]) -> int:
    from tqdm import tqdm

    failed = 0
    for name in names:
        if not CATALOG[name].commercial_use:
            print(f"note: {CATALOG[name].licence_note.en}", file=sys.stderr)
        with tqdm(desc=name, unit="B", unit_scale=True, unit_divisor=1024) as bar:
            def progress(done: int, total: int, bar: tqdm = bar) -> None:
                bar.total = total or None
                bar.n = done
                bar.refresh()

            try:
                manager.download(name, progress=progress)
            except DownloadError as exc:
                bar.close()
                print(f"{name}: download failed: {exc}", file=sys.stderr)
                failed += 1
                continue
        print(f"{name}: ready in {CATALOG[name].folder(manager.settings)}")
    return 1 if failed else 0


def cmd_verify(manager: ModelManager, names: list[str]) -> int:
    bad = 0
    for name in names:
        for row in manager.verify(name):
            if not row["present"]:
                print(f"{name}/{row['file']}: missing" + ("" if row["required"] else
                                                          " (optional)"))
                bad += 0 if row["ok"] else 1
                continue
            print(f"{name}/{row['file']}: {row['size']} bytes sha256 {row['sha256']} "
                  f"({row['note']})")
            bad += 0 if row["ok"] else 1
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.models",
        description="List, download (resumable, verified) and verify the neural engines' "
                    "weights.")
    parser.add_argument("command", choices=("list", "download", "verify"))
    parser.add_argument("name", nargs="?", help=f"one of {', '.join(CATALOG)} (default: all)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    engine_settings = replace(settings.engine_settings(), allow_downloads=True)
    manager = ModelManager(engine_settings)
    names = _names(args.name)
    command = {"list": cmd_list, "download": cmd_download, "verify": cmd_verify}[args.command]
    return command(manager, names)


if __name__ == "__main__":
    raise SystemExit(main())
