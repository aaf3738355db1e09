"""The Voice tab's line for how a profile's speech is changed: a filter's strength is shown
whenever it is not the person's average itself, past it (a caricature) as well as short of it."""

from __future__ import annotations

import pytest

from app.ui.voice_serving import _change


@pytest.mark.parametrize(("lang", "word"), [("en", "strength"), ("ja", "強さ")])
def test_a_filter_past_the_persons_average_shows_its_strength(lang: str, word: str) -> None:
    def shown(strength: float) -> str:
        return _change({"converter": "timbre_filter", "strength": strength}, lang)

    assert shown(1.3).endswith(f"({word} 130\u00a0%)")
    assert shown(0.7).endswith(f"({word} 70\u00a0%)")
    assert word not in shown(1.0)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_table_names_the_change_in_a_few_words_and_still_says_not_cloning(lang: str
                                                                               ) -> None:
    """The converters' long labels squeezed the table's number columns to a few letters a
    line in Chromium; the table names each change in a few words, its rule still says voice
    matching, not cloning, and a converter without a short name keeps its long one."""
    from app.ui.text import plain
    from app.ui.voice_serving import serving_summary

    record = {"serves": {"voice": "jf_alpha", "converter": "timbre_filter", "strength": 1.3},
              "scores": {"nearness": 0.76, "naturalness": 4.04, "words": 0.95},
              "plain": {"nearness": 0.5, "naturalness": 4.12}, "judge": "distillmos",
              "rule": {"naturalness_drop": 0.25}}
    warp = {**record, "serves": {**record["serves"], "converter": "formant_warp",
                                 "strength": 1.0}}
    matched = {**record, "serves": {**record["serves"], "converter": "voice_matching",
                                    "strength": 1.0}}
    table = serving_summary({"serving": {"en": record, "ja": warp, "xx": matched}}, lang)
    rows = table.splitlines()
    for converter, row in (("timbre_filter", rows[4]), ("formant_warp", rows[5])):
        change = row.split(" | ")[2]
        assert change.startswith(plain(f"change.{converter}", lang)), row
        assert len(change) < len(plain(f"conversion.{converter}", lang)) * 0.7, row
    assert plain("conversion.voice_matching", lang) in rows[6]
    assert ("not cloning" if lang == "en" else "クローンではありません") in rows[-1]
    assert "DNSMOS" not in rows[-1]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_rule_names_every_predictor_that_judged(lang: str) -> None:
    """The voices are judged by a second predictor too (the record's ``guards``): the rule
    under the table names both."""
    from app.ui.voice_serving import serving_summary

    record = {"serves": {"voice": "jf_alpha", "converter": None, "strength": 1.0},
              "scores": {"nearness": 0.76, "naturalness": 4.04, "words": 1.0},
              "plain": {"nearness": 0.5, "naturalness": 4.12}, "judge": "distillmos",
              "guards": {"dnsmos_ovrl": 3.23}, "rule": {"naturalness_drop": 0.25}}
    rule = serving_summary({"serving": {"en": record}}, lang).splitlines()[-1]
    assert "DistillMOS" in rule and "DNSMOS" in rule, rule
