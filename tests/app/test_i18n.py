from __future__ import annotations

import pytest

from app.i18n import pick_language


@pytest.mark.parametrize(("header", "expected"), [
    (None, "en"), ("", "en"), ("ja", "ja"), ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
    ("en-US,en;q=0.9,ja;q=0.8", "en"), ("fr-FR,ja;q=0.5", "ja"), ("de", "en"),
    ("ja;q=0,en", "en"), ("ja;q=abc,en;q=0.2", "en"),
])
def test_pick_language(header: str | None, expected: str) -> None:
    assert pick_language(header) == expected
