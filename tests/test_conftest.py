"""``STUDIO_REQUIRE_SERVICES`` (tests/conftest.py): on, a missing service fails the test; off
(unset, empty, 0, false, no, off), it is skipped. ``.ci/run`` sets it to 1."""

from __future__ import annotations

import pytest

from tests.conftest import unavailable


@pytest.mark.parametrize("value", [None, "", "0", "false", "No", " off "])
def test_off_values_skip(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("STUDIO_REQUIRE_SERVICES", raising=False)
    else:
        monkeypatch.setenv("STUDIO_REQUIRE_SERVICES", value)
    with pytest.raises(pytest.skip.Exception, match="redis-server not installed"):
        unavailable("redis-server not installed")


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_on_values_fail(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STUDIO_REQUIRE_SERVICES", value)
    with pytest.raises(pytest.fail.Exception, match="required in CI: redis-server"):
        unavailable("redis-server not installed")
