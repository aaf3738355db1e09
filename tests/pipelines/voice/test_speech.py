"""Synthesis routing over stand-in engines: voices parsed once, engines asked through the
SpeechEngine protocol (owns, languages, style_service, Blending), never by name."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from models.base import (
    Audio,
    Blending,
    MatchingCalibration,
    Speech,
    SpeechEngine,
    SpeechRequest,
    VoiceInfo,
)
from models.chain import Attempt, ChainResult, FallbackChain
from models.errors import InvalidInput
from pipelines.voice.calibration import CalibrationCache, calibrate_matching
from pipelines.voice.engines import check_voice, language_chain, voice_owner
from pipelines.voice.ref import VoiceRef
from pipelines.voice.reports import ChainReport, ConversionReport, SynthesisReport
from pipelines.voice.speech import VoiceChoice, synthesize


class Local:
    """A local engine with voices of its own."""

    style_service = False

    def __init__(self, name: str, voices: Sequence[tuple[str, str]]) -> None:
        self.name = name
        self._voices = [VoiceInfo(v, v, lang, "female", name) for v, lang in voices]
        self.requests: list[SpeechRequest] = []

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted({v.language for v in self._voices}))

    def available(self) -> tuple[bool, str]:
        return True, "ok"

    def close(self) -> None:
        pass

    def voices(self) -> list[VoiceInfo]:
        return list(self._voices)

    def owns(self, voice: str) -> bool:
        return any(v.id == voice for v in self._voices)

    def synthesize(self, request: SpeechRequest) -> Speech:
        self.requests.append(request)
        seed = sum(map(ord, request.voice or "")) % 97
        samples = np.random.default_rng(seed).normal(0, 0.1, 2400).astype(np.float32)
        return Speech(Audio(samples, 24000))


class Mixing(Local):
    """A local engine that blends its own voices (as Kokoro does)."""

    def owns(self, voice: str) -> bool:
        if "+" in voice:
            parts = [p.split(":")[0] for p in voice.split("+")]
            if not all(super(Mixing, self).owns(p) for p in parts):
                raise InvalidInput("bad blend", code="VOICE_UNKNOWN_VOICE")
            return True
        return super().owns(voice)

    def blend(self, weights: Sequence[tuple[str, float]]) -> str | None:
        if not all(super(Mixing, self).owns(v) for v, _ in weights):
            return None
        return "+".join(f"{v}:{w:g}" for v, w in weights)


class Styles(Local):
    """A service addressed by style ids (as VOICEVOX is)."""

    style_service = True

    def owns(self, voice: str) -> bool:
        raise AssertionError("a style service is never asked about built-in voices")


@pytest.fixture
def engines() -> tuple[Mixing, Local, Styles]:
    return (Mixing("mixer", [("a1", "ja"), ("a2", "ja")]), Local("english", [("e1", "en")]),
            Styles("styles", [("s1", "ja")]))


def chain(*engines: object) -> FallbackChain[SpeechEngine]:
    return FallbackChain("tts", list(engines))  # type: ignore[arg-type]


def test_stand_ins_meet_the_protocols(engines: tuple[Mixing, Local, Styles]) -> None:
    mixer, english, styles = engines
    assert all(isinstance(e, SpeechEngine) for e in engines)
    assert isinstance(mixer, Blending) and not isinstance(english, Blending)


def test_owner_by_protocol(engines: tuple[Mixing, Local, Styles]) -> None:
    mixer, english, styles = engines
    tts = chain(styles, mixer, english)
    assert voice_owner(tts, VoiceRef("builtin", "e1")) is english
    assert voice_owner(tts, VoiceRef("builtin", "a1:0.5+a2:0.5")) is mixer
    assert voice_owner(tts, VoiceRef.voicevox(3)) is styles
    with pytest.raises(InvalidInput) as bad:
        voice_owner(tts, VoiceRef("builtin", "nobody"))
    assert bad.value.code == "VOICE_UNKNOWN_VOICE"
    assert bad.value.details["voices"] == ["a1", "a2", "e1"]  # a style service lists none
    with pytest.raises(InvalidInput):
        voice_owner(tts, VoiceRef("builtin", "a1:0.5+zz:0.5"))
    with pytest.raises(InvalidInput):
        voice_owner(chain(mixer), VoiceRef.voicevox(3))  # no style service configured


def test_language_chain_puts_the_owner_first(engines: tuple[Mixing, Local, Styles]) -> None:
    mixer, english, styles = engines
    tts = chain(mixer, english, styles)
    assert [e.name for e in language_chain(tts, "ja", VoiceRef.voicevox(2))] == \
        ["styles", "mixer"]
    assert [e.name for e in language_chain(tts, "en", None)] == ["english"]
    with pytest.raises(InvalidInput) as mismatch:
        language_chain(tts, "en", VoiceRef("builtin", "a1"))
    assert mismatch.value.code == "VOICE_LANGUAGE_MISMATCH"


def test_check_voice_needs_a_style_service_for_a_style(engines: tuple[Mixing, Local, Styles]
                                                        ) -> None:
    mixer, english, styles = engines
    check_voice(chain(mixer, styles), VoiceRef.voicevox(1), "ja")
    with pytest.raises(InvalidInput) as missing:
        check_voice(chain(mixer, english), VoiceRef.voicevox(1), "ja")
    assert missing.value.details == {"field": "voice", "voice": "voicevox:1"}


@pytest.mark.parametrize(("fields", "expected"), [
    (("builtin", None, None), VoiceChoice("builtin")),
    (("preset", "a1", None), VoiceChoice("builtin", VoiceRef("builtin", "a1"))),
    (("builtin", "voicevox:3", None), VoiceChoice("builtin", VoiceRef.voicevox(3))),
    (("voicevox", "8", None), VoiceChoice("style", VoiceRef.voicevox(8))),
    (("voicevox", "voicevox:8", None), VoiceChoice("style", VoiceRef.voicevox(8))),
    (("clone", "a1", "openvoice_0000abcd"),
     VoiceChoice("profile", VoiceRef("profile", "openvoice_0000abcd"), VoiceRef("builtin", "a1"))),
])
def test_rest_fields_become_one_choice(fields: tuple[str, str | None, str | None],
                                       expected: VoiceChoice) -> None:
    assert VoiceChoice.from_fields(*fields) == expected


@pytest.mark.parametrize(("fields", "code"), [
    (("robot", None, None), "VOICE_INVALID_VOICE_TYPE"),
    (("profile", None, None), "VOICE_PROFILE_ID_REQUIRED"),
    (("voicevox", "a1", None), "VOICE_UNKNOWN_VOICE"),
    (("voicevox", "voicevox:x", None), "VOICE_UNKNOWN_VOICE"),
    (("builtin", "openvoice_0000abcd", None), "VOICE_UNKNOWN_VOICE"),  # a profile is no voice
])
def test_rest_fields_rejected(fields: tuple[str, str | None, str | None], code: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        VoiceChoice.from_fields(*fields)
    assert bad.value.code == code


def test_a_voicevox_request_keeps_to_the_style_service(engines: tuple[Mixing, Local, Styles]
                                                       ) -> None:
    mixer, english, styles = engines
    speech, report = synthesize("こんにちは。", tts=chain(mixer, styles),
                                choice=VoiceChoice.of(VoiceRef.voicevox(5)))
    assert styles.requests[-1].voice == "voicevox:5" and not mixer.requests
    data = report.as_dict()
    assert (data["backend"], data["voice"], data["voice_type"], data["method"]) == \
        ("styles", "voicevox:5", "voicevox", "tts")
    assert "conversion" not in data and "profile_id" not in data
    assert data["duration"] == round(speech.audio.duration, 3)


def test_report_carries_a_converter_fallback() -> None:
    tts = ChainReport("mixer", (Attempt("mixer", "used"),))
    conversion = ConversionReport("voice_matching",
                                  (Attempt("openvoice", "skipped", "no weights"),
                                   Attempt("voice_matching", "used")),
                                  label="voice matching", duration_s=0.5)
    report = SynthesisReport(tts, "a1", "profile", "ja", method="voice_matching",
                             conversion=conversion, profile_id="openvoice_0000abcd")
    data = report.as_dict()
    assert data["fallback_used"] is True and data["fallback_method"] == "voice_matching"
    assert data["conversion"] == {
        "backend": "voice_matching", "fallback_used": True, "fallback_method": "voice_matching",
        "attempts": [{"backend": "openvoice", "outcome": "skipped", "reason": "no weights",
                      "duration": 0.0},
                     {"backend": "voice_matching", "outcome": "used", "reason": "",
                      "duration": 0.0}],
        "label": "voice matching", "duration_s": 0.5}
    assert data["profile_id"] == "openvoice_0000abcd" and report.engine == "voice_matching"
    assert list(data) == ["backend", "fallback_used", "fallback_method", "attempts", "voice",
                          "voice_type", "language", "method", "timings", "conversion",
                          "profile_id", "duration"]
    assert ChainReport.of(ChainResult(1, "mixer")).backend == "mixer"


def test_calibration_blends_with_the_engine_that_blends(engines: tuple[Mixing, Local, Styles],
                                                       tmp_path: object) -> None:
    mixer, english, styles = engines
    asked: list[str | None] = []

    class Matcher:
        name = "stand-in matcher"
        encoder_name = "stand-in"

        def available(self) -> tuple[bool, str]:
            return True, "ok"

        def embed(self, audio: Audio) -> np.ndarray:
            return np.asarray([float(np.sum(audio.samples ** 2)), 1.0], np.float32)

        def calibrate(self, target: np.ndarray, reference: Audio,
                      candidates: Sequence[tuple[str, Audio]], blend: object = None,
                      default_voice: str | None = None, embeddings: object = None
                      ) -> MatchingCalibration:
            made = blend([("a1", 0.6), ("a2", 0.4)])  # type: ignore[operator]
            asked.append(made[0] if made else None)
            return MatchingCalibration("stand-in", candidates[0][0], {"pitch_median": 0.0}, {})

    CalibrationCache._memory.clear()
    found = calibrate_matching(chain(styles, english, mixer), Matcher(),
                               np.ones(2, np.float32), Audio(np.zeros(10, np.float32), 24000),
                               "ja")
    assert found is not None and found.source_voice == "a1"
    assert asked == ["a1:0.6+a2:0.4"]
    assert not styles.requests  # a style service is never a calibration voice
    assert [r.voice for r in mixer.requests] == ["a1", "a2", "a1:0.6+a2:0.4"]
