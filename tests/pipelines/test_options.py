"""Option models' errors: one door from pydantic to the studio's InvalidInput."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from models.errors import InvalidInput
from pipelines.options import Number, field_choices, field_range, parse, ranges


class Knobs(BaseModel):
    level: Number = Field(default=1.0, ge=0.0, le=2.0)
    shape: Literal["round", "square"] = "round"
    loud: bool = False
    count: int = 0


def test_a_good_mapping_is_parsed_from_form_strings() -> None:
    knobs = parse(Knobs, {"level": "1.5", "shape": "square", "loud": "true", "count": "3"},
                  code="TEST_INVALID")
    assert knobs == Knobs(level=1.5, shape="square", loud=True, count=3)


@pytest.mark.parametrize("value", [2.5, -1, "nan", "inf", "high", True, [1]])
def test_a_number_out_of_range_names_the_field_and_range(value: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(Knobs, {"level": value}, code="TEST_INVALID")
    error = caught.value
    assert error.code == "TEST_INVALID"
    assert error.details["field"] == "level"
    assert error.details["allowed"] == {"min": 0.0, "max": 2.0}
    assert "from 0 to 2" in error.message
    assert "0 から 2" in error.message_ja


def test_a_bad_choice_lists_the_allowed_values_and_takes_the_field_code() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(Knobs, {"shape": "oval"}, code="TEST_INVALID", codes={"shape": "TEST_SHAPE"},
              messages={"shape": ("No shape {value}.", "形 {value} はありません。")})
    error = caught.value
    assert error.code == "TEST_SHAPE"
    assert error.details == {"field": "shape", "value": "oval", "allowed": ["round", "square"]}
    assert error.message == "No shape 'oval'."
    assert error.message_ja == "形 'oval' はありません。"


def test_a_bad_flag_says_true_or_false() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(Knobs, {"loud": "maybe"}, code="TEST_INVALID")
    assert caught.value.details["allowed"] == [True, False]
    assert "true or false" in caught.value.message


def test_field_metadata_reads_ranges_and_choices() -> None:
    assert field_range(Knobs, "level") == (0.0, 2.0)
    assert field_range(Knobs, "count") is None
    assert field_choices(Knobs, "shape") == ["round", "square"]
    assert ranges(Knobs, ["level", "count"]) == {"level": (0.0, 2.0)}
