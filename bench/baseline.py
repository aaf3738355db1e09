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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = os.environ.get("STUDIO_BENCH_BASELINE", "main")


def baseline_module(path: str, ref: str = REF) -> types.ModuleType | None:
    """The module at ``path`` as of ``ref``, or None when git or the ref is not there."""
    try:
        source = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    name = "baseline_" + Path(path).stem
    module = types.ModuleType(name)
    module.__file__ = f"{ref}:{path}"
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own repo
    return module
