"""The ordered fallback chain: engines of one capability, tried in the order settings give.

A :class:`FallbackChain` implements the same work method as its engines, so a chain can stand
wherever an engine can. It falls through only on :class:`BackendUnavailable` (missing,
unhealthy, transient failure), never on bad input, and records every engine it skipped or
that failed. Whoever wants to hear of each run (the job runner's metrics) gives the chain
an observer (:meth:`FallbackChain.observed`) instead of wrapping it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from models.errors import BackendUnavailable


@runtime_checkable
class Engine(Protocol):
    """What every backend of every capability has."""

    name: str

    def available(self) -> tuple[bool, str]:
        """Whether this engine can work now, and why not. Must be cheap: no model loads."""
        ...

    def close(self) -> None: ...


E = TypeVar("E", bound=Engine)
T = TypeVar("T")


@dataclass(frozen=True)
class Attempt:
    backend: str
    outcome: Literal["used", "skipped", "failed"]
    reason: str = ""
    duration: float = 0.0


@dataclass(frozen=True)
class ChainResult(Generic[T]):
    """A chain's value plus who made it and what was passed over on the way."""

    value: T
    backend: str
    attempts: tuple[Attempt, ...] = ()

    @property
    def fallback_used(self) -> bool:
        return any(a.outcome != "used" for a in self.attempts)

    @property
    def fallback_method(self) -> str | None:
        return self.backend if self.fallback_used else None

    def report(self) -> dict[str, Any]:
        """The record every API response and the UI's engine panel show."""
        return {
            "backend": self.backend,
            "fallback_used": self.fallback_used,
            "fallback_method": self.fallback_method,
            "attempts": [
                {"backend": a.backend, "outcome": a.outcome, "reason": a.reason,
                 "duration": round(a.duration, 3)}
                for a in self.attempts
            ],
        }


class FallbackChain(Generic[E]):
    """Engines of one capability, tried in order.

    ``run(op)`` calls ``op(engine)`` on the first available engine; when that raises
    :class:`BackendUnavailable` the next one is tried. Any other error (bad input, a bug)
    stops the chain at once: falling back would hide it.
    """

    def __init__(self, capability: str, engines: Sequence[E],
                 observers: Sequence[ChainObserver] = ()) -> None:
        self.capability = capability
        self.engines = list(engines)
        self.observers = tuple(observers)
        self.name = "chain(" + ",".join(e.name for e in self.engines) + ")"

    def observed(self, observer: ChainObserver) -> FallbackChain[E]:
        """The same engines, also telling ``observer`` of each run: its result, or the
        :class:`ChainExhausted` about to be raised. This chain itself is left as it is."""
        return FallbackChain(self.capability, self.engines, (*self.observers, observer))

    def __iter__(self) -> Iterator[E]:
        return iter(self.engines)

    def get(self, name: str) -> E:
        for engine in self.engines:
            if engine.name == name:
                return engine
        raise KeyError(name)

    def available(self) -> tuple[bool, str]:
        reasons = []
        for engine in self.engines:
            ok, why = engine.available()
            if ok:
                return True, f"{engine.name} ready"
            reasons.append(f"{engine.name}: {why}")
        return False, "; ".join(reasons) or "no engines configured"

    def inventory(self) -> list[dict[str, Any]]:
        rows = []
        for engine in self.engines:
            try:
                ok, why = engine.available()
            except Exception as exc:  # a broken probe is reported, not raised
                ok, why = False, f"availability check failed: {exc}"
            row: dict[str, Any] = {"name": engine.name, "available": ok, "reason": why}
            if getattr(type(engine), "circuit_state", None) is not None:
                # a remote engine behind a circuit breaker (models.circuit)
                row["circuit"] = getattr(engine, "circuit_state", None)
            rows.append(row)
        return rows

    def run(self, op: Callable[[E], T], *, only: str | None = None) -> ChainResult[T]:
        """Run ``op`` on the first engine that can do it; ``only`` pins one engine by name."""
        attempts: list[Attempt] = []
        engines = [self.get(only)] if only else self.engines
        for engine in engines:
            ok, why = engine.available()
            if not ok:
                attempts.append(Attempt(engine.name, "skipped", why))
                continue
            started = time.perf_counter()
            try:
                value = op(engine)
            except BackendUnavailable as exc:
                attempts.append(
                    Attempt(engine.name, "failed", f"{exc.code}: {exc.message}",
                            time.perf_counter() - started)
                )
                continue
            attempts.append(Attempt(engine.name, "used", "", time.perf_counter() - started))
            result = ChainResult(value, engine.name, tuple(attempts))
            for observer in self.observers:
                observer(self.capability, result)
            return result
        exhausted = ChainExhausted(self.capability, attempts)
        for observer in self.observers:
            observer(self.capability, exhausted)
        raise exhausted

    def close(self) -> None:
        for engine in self.engines:
            engine.close()


class ChainExhausted(BackendUnavailable):
    """No engine of a capability could do the work; the attempts say why for each."""

    def __init__(self, capability: str, attempts: Sequence[Attempt]) -> None:
        summary = "; ".join(f"{a.backend} {a.outcome}: {a.reason}" for a in attempts)
        code = f"{capability.upper()}_UNAVAILABLE"
        super().__init__(
            f"No {capability} engine is available ({summary or 'none configured'}).",
            code=code,
            message_ja=f"利用できる{capability}エンジンがありません（{summary or '未設定'}）。",
            details={"capability": capability,
                     "attempts": [a.__dict__ for a in attempts]},
            retry_after=30,
        )
        self.attempts = list(attempts)


ChainObserver = Callable[[str, ChainResult[Any] | ChainExhausted], None]
"""Told of each run of a chain: its capability, and its result or why it found no engine."""
