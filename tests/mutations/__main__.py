"""The mutation check: ``python -m tests.mutations [NAME ...]`` (``.ci/run`` runs it before
the suite).

The studio's files (tracked, and untracked ones git does not ignore) are copied to a scratch
folder; the union of every mutant's test selection is run there first, unmutated, and must
pass. Then each planted defect (``tests/mutations/mutants.py``) is applied to the copy in
turn, its selection run in the fast lane (``-m "not slow"``), and the file put back. A
mutant must make its selection fail (pytest exit status 1, tests failed): one that leaves it
green has *survived*, one that breaks collection or the run is an *error*; either fails the
check. The table at the end says which tests caught each defect, and how long it took.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.mutations.mutants import MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[2]
FAILED_LINE = re.compile(r"^FAILED (\S+)", re.MULTILINE)
ERROR_LINE = re.compile(r"^ERROR (\S+)", re.MULTILINE)


@dataclass
class Outcome:
    mutant: Mutant
    verdict: str  # caught | survived | error
    seconds: float
    caught_by: list[str]
    tail: str = ""


def studio_files(root: Path) -> list[str]:
    """The repository's files as a fresh clone plus this checkout's new files have them."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name and (root / name).is_file()]


def scratch_copy(root: Path, target: Path) -> None:
    for name in studio_files(root):
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest)


def environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)  # the copy's packages, before an editable install's
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no stale bytecode between a mutant and its revert
    return env


def pytest_run(copy: Path, tests: list[str], timeout: float) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
           "-rfE", "--tb=line", *tests]
    try:
        done = subprocess.run(cmd, cwd=copy, env=environment(copy), capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else ""
        return 124, (out or "") + f"\n(timed out after {timeout:.0f} s)"
    return done.returncode, done.stdout + done.stderr


def check_imports_from(copy: Path) -> None:
    """The scratch copy, not this checkout or an editable install, is what the runs import."""
    probe = subprocess.run(
        [sys.executable, "-c", "import app, models, pipelines; "
         "print(app.__file__); print(models.__file__); print(pipelines.__file__)"],
        cwd=copy, env=environment(copy), capture_output=True, text=True, check=True)
    for line in probe.stdout.split():
        if not Path(line).resolve().is_relative_to(copy.resolve()):
            raise SystemExit(f"mutation check: {line} is imported, not the scratch copy")


def apply(copy: Path, mutant: Mutant) -> str:
    path = copy / mutant.file
    original = path.read_text(encoding="utf-8")
    count = original.count(mutant.old)
    if count != 1:
        raise SystemExit(f"mutant {mutant.name}: its old text occurs {count} times in "
                         f"{mutant.file} (must be once): update tests/mutations/mutants.py")
    path.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
    return original


def run_mutant(copy: Path, mutant: Mutant, timeout: float) -> Outcome:
    original = apply(copy, mutant)
    started = time.monotonic()
    try:
        rc, output = pytest_run(copy, list(mutant.tests), timeout)
    finally:
        (copy / mutant.file).write_text(original, encoding="utf-8")
    seconds = time.monotonic() - started
    failed = FAILED_LINE.findall(output)
    tail = "\n".join(output.strip().splitlines()[-25:])
    if rc == 1 and failed:
        return Outcome(mutant, "caught", seconds, failed)
    if rc == 0:
        return Outcome(mutant, "survived", seconds, [], tail)
    return Outcome(mutant, "error", seconds, failed + ERROR_LINE.findall(output), tail)


def report(outcomes: list[Outcome]) -> str:
    lines = ["", "mutation check (fast lane, -m 'not slow'):", ""]
    for o in outcomes:
        lines.append(f"  {o.verdict.upper():9} {o.mutant.name}  ({o.seconds:.0f} s): "
                     f"{o.mutant.description}")
        for test in o.caught_by:
            lines.append(f"              caught by {test}")
        if o.verdict != "caught":
            lines.append(f"              selection: {' '.join(o.mutant.tests)}")
            lines.extend("              | " + ln for ln in o.tail.splitlines())
    caught = sum(o.verdict == "caught" for o in outcomes)
    lines += ["", f"{caught} of {len(outcomes)} planted defects caught"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutations", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds for one pytest run (default 600)")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m.name}: {m.description}\n    {m.file}; tests: {' '.join(m.tests)}")
        return 0
    known = {m.name: m for m in MUTANTS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"no mutant named {', '.join(unknown)} (see --list)")
    chosen = [known[n] for n in args.names] if args.names else list(MUTANTS)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="studio-mutations-") as tmp:
        copy = Path(tmp) / "studio"
        scratch_copy(ROOT, copy)
        check_imports_from(copy)
        selection = sorted({t for m in chosen for t in m.tests})
        rc, output = pytest_run(copy, selection, args.timeout)
        if rc != 0:  # a selection that fails unmutated proves nothing about a mutant
            print(output[-6000:])
            print(f"mutation check: the unmutated selection does not pass (pytest exit {rc}): "
                  f"{' '.join(selection)}", file=sys.stderr)
            return 1
        print(f"mutation check: unmutated selection passes "
              f"({time.monotonic() - started:.0f} s): {' '.join(selection)}", flush=True)
        outcomes = []
        for mutant in chosen:
            outcome = run_mutant(copy, mutant, args.timeout)
            print(f"  {outcome.verdict}: {mutant.name} ({outcome.seconds:.0f} s)", flush=True)
            outcomes.append(outcome)
    print(report(outcomes))
    print(f"(mutation check took {time.monotonic() - started:.0f} s)")
    return 0 if all(o.verdict == "caught" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
