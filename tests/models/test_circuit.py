"""The circuit breaker opens after repeated failures, half-opens later, closes on success."""

from __future__ import annotations

import pytest

from models.chain import FallbackChain
from models.circuit import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from models.errors import BackendUnavailable, InvalidInput, TransientBackendError


class Remote:
    name = "remote"

    def __init__(self) -> None:
        self.fail = True
        self.calls = 0

    def available(self) -> tuple[bool, str]:
        return True, "configured"

    def call(self, x: int) -> int:
        self.calls += 1
        if self.fail:
            raise TransientBackendError("connection refused")
        return x * 2

    def bad(self) -> None:
        raise InvalidInput("bad")

    def close(self) -> None:
        pass


class Local:
    name = "local"

    def available(self) -> tuple[bool, str]:
        return True, "ok"

    def call(self, x: int) -> int:
        return -x

    def close(self) -> None:
        pass


def test_opens_half_opens_and_closes() -> None:
    now = [0.0]
    remote = Remote()
    breaker = CircuitBreaker(remote, threshold=3, cooldown=10, clock=lambda: now[0])
    for _ in range(3):
        with pytest.raises(TransientBackendError):
            breaker.call(1)
    assert breaker.state == OPEN
    ok, why = breaker.available()
    assert ok is False
    assert "circuit open" in why
    calls = remote.calls
    with pytest.raises(BackendUnavailable) as refused:  # refused without calling the remote
        breaker.call(1)
    assert refused.value.code == "ENGINE_CIRCUIT_OPEN"
    assert remote.calls == calls
    now[0] = 11
    assert breaker.state == HALF_OPEN
    with pytest.raises(TransientBackendError):  # the trial fails: open again
        breaker.call(1)
    assert breaker.state == OPEN
    now[0] = 25
    remote.fail = False
    assert breaker.call(4) == 8
    assert breaker.state == CLOSED


def test_bad_input_does_not_trip_it() -> None:
    breaker = CircuitBreaker(Remote(), threshold=1)
    for _ in range(3):
        with pytest.raises(InvalidInput):
            breaker.bad()
    assert breaker.state == CLOSED


def test_chain_skips_open_circuit_quickly() -> None:
    remote = Remote()
    breaker = CircuitBreaker(remote, threshold=2, cooldown=60)
    chain = FallbackChain("tts", [breaker, Local()])
    for _ in range(2):
        assert chain.run(lambda e: e.call(3)).backend == "local"
    calls = remote.calls
    result = chain.run(lambda e: e.call(3))
    assert result.backend == "local"
    assert remote.calls == calls
    assert result.attempts[0].outcome == "skipped"
    assert "circuit open" in result.attempts[0].reason
