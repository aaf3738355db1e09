"""Today's code, side by side: load a module as it is on another git ref (default ``main``).

The benchmarks compare a change with the code it replaces *in the same process* (the machine
is shared, so only ratios measured together mean much). ``baseline_module("models/x.py")``
compiles ``git show main:models/x.py`` into a fresh module named ``baseline_x``; its own
imports resolve to the working tree's modules, which is what we want for helpers that did
not change.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = os.environ.get("STUDIO_BENCH_BASELINE", "main")


def baseline_module(path: str, ref: str = REF, was: Sequence[str] = ()) -> types.ModuleType | None:
    """The module at ``path`` as of ``ref`` (or at one of its former paths ``was``, for a ref
    from before a move), or None when git, the ref or an import of the old module is not
    there."""
    for candidate in (path, *was):
        try:
            source = subprocess.run(["git", "show", f"{ref}:{candidate}"], cwd=ROOT, check=True,
                                    capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
        try:
            return _compile(candidate, source, ref)
        except ImportError:
            return None  # it imports a module that has since moved: no baseline
    return None


def _compile(path: str, source: str, ref: str) -> types.ModuleType:
    name = "baseline_" + Path(path).stem
    module = types.ModuleType(name)
    module.__file__ = f"{ref}:{path}"
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # our own repo
    return module
