"""The mutation check's list stays applicable as the code moves on: each mutant's text is in
its file exactly once, the mutated file still compiles (a defect, not a syntax error), and its
test selection names fast-lane tests that exist. (The check itself, which runs the tests on
each mutant, is ``python -m tests.mutations``, run by ``.ci/run``.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.mutations.mutants import MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[2]


def test_names_are_unique() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names))
    assert all(m.description and m.tests for m in MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_applies_once_and_compiles(mutant: Mutant) -> None:
    source = (ROOT / mutant.file).read_text(encoding="utf-8")
    assert source.count(mutant.old) == 1, f"{mutant.name}: old text not found once"
    assert mutant.new != mutant.old
    mutated = source.replace(mutant.old, mutant.new)
    compile(mutated, mutant.file, "exec")  # raises SyntaxError on a broken mutant


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_selection_names_fast_tests_that_exist(mutant: Mutant) -> None:
    for selection in mutant.tests:
        path, _, name = selection.partition("::")
        assert (ROOT / path).is_file(), selection
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        slow_module = any(
            isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark"
                                                 for t in node.targets)
            and "slow" in ast.unparse(node.value) for node in tree.body)
        assert not slow_module, f"{selection}: the whole module is slow, not the fast lane"
        if name:
            test = name.split("[")[0]
            assert any(isinstance(node, ast.FunctionDef) and node.name == test
                       for node in tree.body), selection
