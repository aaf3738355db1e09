"""The timbre filters share what they learn of a person (``timbre_filter.PEOPLE``, by the
profile's key); these tests give different people the same key, so each starts it empty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.voice import timbre_filter


@pytest.fixture(autouse=True)
def no_person_known() -> Iterator[None]:
    timbre_filter.PEOPLE.clear()
    yield
    timbre_filter.PEOPLE.clear()
