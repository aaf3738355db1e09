"""The Voice tab's line for how a profile's speech is changed: a filter's strength is shown
whenever it is not the person's average itself, past it (a caricature) as well as short of it."""

from __future__ import annotations

import pytest

from app.ui.voice_serving import _change


@pytest.mark.parametrize(("lang", "word"), [("en", "strength"), ("ja", "強さ")])
def test_a_filter_past_the_persons_average_shows_its_strength(lang: str, word: str) -> None:
    def shown(strength: float) -> str:
        return _change({"converter": "timbre_filter", "strength": strength}, lang)

    assert shown(1.3).endswith(f"({word} 130 %)")
    assert shown(0.7).endswith(f"({word} 70 %)")
    assert word not in shown(1.0)
