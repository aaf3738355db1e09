"""app.ui builds each tab from the parts it uses: only the package's assembly
(``app/ui/__init__.py``) sees the whole ``Services``; a tab or a shared helper that reached
for it again could read anything the app holds."""

from __future__ import annotations

import ast
from pathlib import Path

UI = Path(__file__).resolve().parents[3] / "app" / "ui"


def _names(path: Path) -> set[str]:
    """Every name a module imports or mentions (annotations included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.update(word.strip("'\"[]") for word in node.value.replace(",", " ").split())
    return names


def test_only_the_assembly_takes_services() -> None:
    modules = sorted(p for p in UI.glob("*.py") if p.name != "__init__.py")
    assert modules
    taking = [p.name for p in modules
              if {"Services", "app.services.Services"} & _names(p)]
    assert taking == []


def test_the_models_panel_reads_the_catalogue_through_its_use_case() -> None:
    names = _names(UI / "models.py")
    assert not {n for n in names if n.startswith(("models.catalog.", "models.downloads."))}
    assert "app.usecases.models" in names
