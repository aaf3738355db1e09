"""The fallback chain: order, fall-through on unavailability only, and its record."""

from __future__ import annotations

import pytest

from models.base import EngineSettings, LazyModel
from models.chain import ChainExhausted, FallbackChain
from models.errors import BackendUnavailable, InvalidInput, TransientBackendError
from models.registry import CAPABILITIES, DEFAULT_ORDER, MissingEngine, build_chain


class FakeEngine:
    def __init__(self, name: str, *, ready: bool = True, fails: Exception | None = None):
        self.name = name
        self.ready = ready
        self.fails = fails
        self.calls = 0

    def available(self) -> tuple[bool, str]:
        return (True, "ok") if self.ready else (False, f"{self.name} weights missing")

    def speak(self, text: str) -> str:
        self.calls += 1
        if self.fails:
            raise self.fails
        return f"{self.name}:{text}"

    def close(self) -> None:
        pass


def test_first_available_engine_is_used() -> None:
    a, b = FakeEngine("a"), FakeEngine("b")
    result = FallbackChain("tts", [a, b]).run(lambda e: e.speak("hi"))
    assert result.value == "a:hi"
    assert result.backend == "a"
    assert result.fallback_used is False and result.fallback_method is None
    assert b.calls == 0


def test_falls_through_two_failures_and_records_why() -> None:
    engines = [
        FakeEngine("neural", ready=False),
        FakeEngine("remote", fails=TransientBackendError("timed out", code="VOICE_TIMEOUT")),
        FakeEngine("dsp"),
    ]
    result = FallbackChain("tts", engines).run(lambda e: e.speak("x"))
    assert result.value == "dsp:x"
    report = result.report()
    assert report["backend"] == "dsp"
    assert report["fallback_used"] is True
    assert report["fallback_method"] == "dsp"
    assert [(a["backend"], a["outcome"]) for a in report["attempts"]] == [
        ("neural", "skipped"), ("remote", "failed"), ("dsp", "used")]
    assert "weights missing" in report["attempts"][0]["reason"]
    assert "VOICE_TIMEOUT" in report["attempts"][1]["reason"]


def test_nothing_available_raises_capability_unavailable() -> None:
    chain = FallbackChain("talking_head", [FakeEngine("x", ready=False),
                                           FakeEngine("y", fails=BackendUnavailable("down"))])
    with pytest.raises(ChainExhausted) as info:
        chain.run(lambda e: e.speak("x"))
    assert info.value.code == "TALKING_HEAD_UNAVAILABLE"
    assert info.value.retry_after
    assert [a.backend for a in info.value.attempts] == ["x", "y"]
    assert info.value.message_ja


def test_bad_input_is_not_a_reason_to_fall_back() -> None:
    second = FakeEngine("second")
    chain = FallbackChain("tts", [FakeEngine("first", fails=InvalidInput("bad")), second])
    with pytest.raises(InvalidInput):
        chain.run(lambda e: e.speak("x"))
    assert second.calls == 0


def test_only_pins_an_engine() -> None:
    chain = FallbackChain("tts", [FakeEngine("a"), FakeEngine("b")])
    assert chain.run(lambda e: e.speak("x"), only="b").backend == "b"
    with pytest.raises(KeyError):
        chain.run(lambda e: e.speak("x"), only="zzz")


def test_chain_is_itself_an_engine() -> None:
    inner = FallbackChain("tts", [FakeEngine("a", ready=False), FakeEngine("b")])
    assert inner.available() == (True, "b ready")
    outer = FallbackChain("tts", [inner])
    assert outer.run(lambda chain: chain.run(lambda e: e.speak("x")).value).value == "b:x"


def test_registry_names_and_missing_modules() -> None:
    assert set(DEFAULT_ORDER) == set(CAPABILITIES)
    for capability, names in DEFAULT_ORDER.items():
        assert set(names) <= set(CAPABILITIES[capability])
    chain = build_chain("tts", ["kokoro"], EngineSettings())
    assert chain.engines[0].name == "kokoro"
    missing = MissingEngine("x", "not in this build")
    assert missing.available() == (False, "not in this build")


def test_every_weights_entry_names_its_engine_s_spec() -> None:
    """Each ``weights=`` of the registry resolves to its engine's ModelSpec: a wrong path
    would leave the engine off the Models panel and the model manager without a word."""
    from models.catalog import CATALOG

    named = {n for engines in CAPABILITIES.values() for n, e in engines.items() if e.weights}
    assert set(CATALOG) == named == {"openvoice", "wav2lip", "birefnet", "segformer", "sam2"}
    assert all(CATALOG[n].what.ja and CATALOG[n].licence_note.ja for n in named)


def test_lazy_model_loads_once() -> None:
    import threading

    calls = []
    lazy = LazyModel(lambda: calls.append(1) or object())
    threads = [threading.Thread(target=lazy.get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and lazy.loaded


def test_an_observer_hears_each_run_and_the_chain_itself_is_unchanged() -> None:
    heard: list[tuple[str, object]] = []
    chain = FallbackChain("tts", [FakeEngine("a", ready=False), FakeEngine("b")])
    observed = chain.observed(lambda capability, outcome: heard.append((capability, outcome)))
    result = observed.run(lambda e: e.speak("hi"))
    assert heard == [("tts", result)] and result.fallback_used and result.backend == "b"
    assert chain.run(lambda e: e.speak("hi")).value == "b:hi"
    assert len(heard) == 1  # the chain it was made from has no observer
    assert chain.observers == () and observed.engines == chain.engines
    dead = FallbackChain("tts", [FakeEngine("c", ready=False)]).observed(
        lambda capability, outcome: heard.append((capability, outcome)))
    with pytest.raises(ChainExhausted) as info:
        dead.run(lambda e: e.speak("x"))
    assert heard[-1] == ("tts", info.value)  # told why, before it is raised
