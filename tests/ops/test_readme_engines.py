"""The README's table of engine orders says what the registry does: a person who sets
``STUDIO_<CAPABILITY>_BACKENDS`` from it starts from the real default (the voice conversion
row had kept an order two converters old)."""

from __future__ import annotations

import re
from pathlib import Path

from models.registry import DEFAULT_ORDER

ROW = re.compile(r"^\| [^|]+ \| `STUDIO_(\w+)_BACKENDS` \| `([\w,]+)` \|$", re.MULTILINE)


def test_the_readme_lists_every_capability_in_its_default_order() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    listed = {name.lower(): tuple(order.split(",")) for name, order in ROW.findall(readme)}
    assert listed == DEFAULT_ORDER
