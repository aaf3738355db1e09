"""Which voice serves a profile, chosen on three axes (nearness, naturalness, words) per
language: the record is made and kept with the profile, its rule holds for every candidate,
a converter that garbles the words or ruins the sound never serves however near it is, and
speech follows the record."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.base import Audio, EngineSettings, SpeechRequest, VoiceTarget
from models.chain import FallbackChain
from models.voice.matching import MatchParams, apply_match
from models.voice.words import KEPT, kept_words
from pipelines.voice.serving import NATURALNESS_DROP, Candidate, sentences, tried_in_order
from tests.fixtures.voice import RATE, SENTENCES, ojt_speech, wav_bytes


class Backwards:
    """A planted defect: a "converter" that plays the speech backwards (same spectrum and
    voice, so the speaker encoder hears it as near as the source; no words)."""

    name = "backwards"
    method = "planted defect"

    def available(self) -> tuple[bool, str]:
        return True, ""

    def close(self) -> None:
        pass

    def convert(self, audio: Audio, target: VoiceTarget) -> Audio:
        return Audio(audio.samples[::-1].copy(), audio.sample_rate)


class Parrot(Backwards):
    """A planted defect: the person's own recording played instead of the text (nearest of
    all and natural; none of the words)."""

    name = "parrot"

    def convert(self, audio: Audio, target: VoiceTarget) -> Audio:
        reference = target.reference.samples
        repeats = int(np.ceil(len(audio.samples) / len(reference)))
        return Audio(np.tile(reference, repeats)[: len(audio.samples)].copy(),
                     target.reference.sample_rate)


class Hiss(Backwards):
    """A planted defect: the speech under loud hiss (words there, the voice ruined)."""

    name = "hiss"

    def convert(self, audio: Audio, target: VoiceTarget) -> Audio:
        noise = np.random.default_rng(1).standard_normal(len(audio.samples)).astype(np.float32)
        return Audio(audio.samples + 0.3 * noise * float(np.std(audio.samples)) * 3,
                     audio.sample_rate)


def person_clips() -> list[tuple[bytes, str]]:
    """The "person": OpenJTalk's voice with formants and pitch moved by Praat."""
    return [(wav_bytes(apply_match(Audio(ojt_speech(s), RATE), MatchParams(1.18, 230.0)).samples),
             f"take{i}.wav") for i, s in enumerate(SENTENCES)]


def kit(tmp_path: Path, first: list[Any], tts: tuple[str, ...] = ("openjtalk",),
        judge: str = "dnsmos") -> Any:
    from app.storage import LocalStorage
    from models.registry import create_engine
    from pipelines.voice.kit import VoiceKit
    from pipelines.voice.profiles import ProfileStore

    settings = EngineSettings(cache_dir=tmp_path / "cache")

    def chain(capability: str, names: tuple[str, ...]) -> FallbackChain[Any]:
        return FallbackChain(capability, [create_engine(capability, n, settings) for n in names])

    converters = chain("voice_converter", ("timbre_filter", "timbre_filter_kinds",
                                           "formant_warp", "frame_matching", "voice_matching"))
    return VoiceKit(tts=chain("tts", tts), encoder=chain("voice_encoder", ("resemblyzer",)),
                    converters=FallbackChain("voice_converter", [*first, *converters]),
                    store=ProfileStore(LocalStorage(tmp_path / "store")),
                    cache_dir=settings.cache_dir, judges=chain("naturalness", (judge,)))


def check_rule(record: dict[str, Any]) -> dict[str, Any]:
    """The rule, read back from the record: the served candidate qualifies and every candidate
    tried before it (conversions of the nearest voice first) failed a rule."""
    served = [c for c in record["candidates"] if c["verdict"] == "served"]
    assert len(served) == 1, record["candidates"]
    chosen = served[0]
    assert {k: chosen[k] for k in ("voice", "converter", "strength")} == record["serves"]
    assert record["scores"] == {k: chosen[k] for k in ("nearness", "naturalness", "words")}
    assert chosen["words"] >= KEPT
    assert chosen["naturalness"] >= record["plain"]["naturalness"] - NATURALNESS_DROP - 1e-6
    heard = [(Candidate(c["voice"], c["converter"], c["strength"], nearness=c["nearness"],
                        rank=c["rank"]), c) for c in record["candidates"]]
    order = [c for _, c in tried_in_order(heard)]
    for other in order[:order.index(chosen)]:
        assert other["verdict"] in ("words lost", "unnatural") \
            or other["verdict"].startswith("unnatural by "), other
    return chosen


def test_a_profile_records_three_scores_and_the_nearest_qualifying_voice_serves(
        tmp_path: Path) -> None:
    voices = kit(tmp_path, [])
    profile = voices.create_profile(person_clips(), name="Person", language="ja")
    assert set(profile.serving) == {"ja"}  # OpenJTalk speaks Japanese only
    record = profile.serving["ja"]
    chosen = check_rule(record)
    assert record["judge"] == "dnsmos_ovrl" and record["plain"]["voice"] == "mei"
    tried = {(c["converter"], c["strength"]) for c in record["candidates"]}
    assert {(None, 1.0), ("timbre_filter", 1.3), ("timbre_filter", 1.0), ("timbre_filter", 0.4),
            ("timbre_filter_kinds", 1.45), ("timbre_filter_kinds", 1.0), ("formant_warp", 1.0),
            ("frame_matching", 1.0)} <= tried
    frame = next(c for c in record["candidates"] if c["converter"] == "frame_matching")
    assert frame["words"] < KEPT and frame["verdict"] in ("words lost", "not measured")
    assert chosen["nearness"] >= record["plain"]["nearness"]
    # kept with the profile, as the API shows it
    stored = voices.store.get(profile.id)
    assert stored.serving == profile.serving
    assert stored.as_dict()["serving"]["ja"]["serves"] == record["serves"]


def test_a_converter_that_garbles_the_words_never_serves(tmp_path: Path) -> None:
    voices = kit(tmp_path, [Backwards()])
    record = voices.create_profile(person_clips(), name="P", language="ja").serving["ja"]
    backwards = [c for c in record["candidates"] if c["converter"] == "backwards"]
    assert backwards and all(c["words"] < 0.3 for c in backwards)
    assert all(c["verdict"] in ("words lost", "not measured") for c in backwards)
    assert check_rule(record)["converter"] != "backwards"


def test_the_nearest_natural_candidate_without_the_words_never_serves(tmp_path: Path) -> None:
    """The person's own recording instead of the text: nearer and as natural as anything,
    and it must still lose, on words alone."""
    voices = kit(tmp_path, [Parrot()])
    record = voices.create_profile(person_clips(), name="P", language="ja").serving["ja"]
    parrot = next(c for c in record["candidates"] if c["converter"] == "parrot")
    assert parrot["rank"] == max(c["rank"] for c in record["candidates"]
                                 if c["rank"] is not None)
    assert parrot["verdict"] == "words lost" and parrot["words"] < 0.3
    assert check_rule(record)["converter"] != "parrot"


def test_a_converter_that_ruins_the_sound_is_passed_over_as_unnatural(tmp_path: Path) -> None:
    voices = kit(tmp_path, [Hiss()])
    record = voices.create_profile(person_clips(), name="P", language="ja").serving["ja"]
    hiss = next(c for c in record["candidates"] if c["converter"] == "hiss")
    plain = record["plain"]["naturalness"]
    if hiss["verdict"] != "not measured":  # measured when it was nearer than the served one
        assert hiss["verdict"] == "unnatural", hiss
        assert hiss["naturalness"] < plain - NATURALNESS_DROP
    assert check_rule(record)["converter"] != "hiss"


def test_speech_follows_the_record(tmp_path: Path) -> None:
    from pipelines.voice.speech import VoiceChoice

    voices = kit(tmp_path, [])
    profile = voices.create_profile(person_clips(), name="Person", language="ja")
    serves = profile.serving["ja"]["serves"]
    speech, report = voices.synthesize("明日また会いましょう。", language="ja",
                                       choice=VoiceChoice.from_fields("profile", None,
                                                                      profile.id))
    record = report.as_dict()
    assert record["serving"]["voice"] == serves["voice"] == report.voice
    assert record["serving"]["converter"] == serves["converter"]
    assert record["serving"]["scores"] == profile.serving["ja"]["scores"]
    if serves["converter"]:
        assert record["conversion"]["backend"] == serves["converter"] == record["method"]
    else:
        assert record["method"] == "source_voice" and "conversion" not in record
    # heard: the served voice's own words, in its own timing
    from pipelines.voice.ref import VoiceRef

    plain, _ = voices.synthesize("明日また会いましょう。", language="ja",
                                 choice=VoiceChoice.of(VoiceRef.parse(serves["voice"])))
    assert kept_words(speech.audio, plain.audio) >= KEPT


@pytest.mark.slow
def test_both_languages_are_measured_with_crossed_voices_and_distillmos(tmp_path: Path
                                                                        ) -> None:
    """With Kokoro and Piper, English is measured too, and Kokoro's packs speak English as
    candidates (a woman's English need not start from Piper's man)."""
    voices = kit(tmp_path, [], tts=("kokoro", "piper"), judge="distillmos")
    profile = voices.create_profile(person_clips(), name="Person", language="ja")
    assert set(profile.serving) == {"ja", "en"}
    english = profile.serving["en"]
    assert english["judge"] == "distillmos"
    voices_tried = {c["voice"] for c in english["candidates"]}
    assert {"en_joe", "jf_alpha", "jm_kumo"} <= voices_tried
    from pipelines.voice.sources import BLENDS  # mixes of the packs are voices too
    assert set(BLENDS) <= voices_tried
    assert set(BLENDS) <= {c["voice"] for c in profile.serving["ja"]["candidates"]}
    for record in profile.serving.values():
        check_rule(record)


def test_the_evolved_voice_keeps_a_language_only_while_it_sounds_natural() -> None:
    """The style search climbs nearness alone; its voice serves a language only within the
    serving rule's drop of the plain voice's naturalness (here a voice under loud hiss)."""
    from models.voice.naturalness import DnsMos
    from pipelines.voice.evolved import VERIFY_SENTENCES, natural_languages
    from pipelines.voice.profiles import Profile

    judge = DnsMos(EngineSettings())
    said = [Audio(ojt_speech(SENTENCES[i % 3]), RATE) for i in range(len(VERIFY_SENTENCES))]
    plain = float(np.mean([judge.naturalness(a) for a in said]))
    profile = Profile(id="openvoice_00000001", name="P", language="ja", created_at="",
                      updated_at="", serving={"ja": {"plain": {"naturalness": plain}}})
    serves = {"ja": "evolved", "en": "matched"}
    kept, heard = natural_languages(serves, said, judge.naturalness, profile)
    assert kept == serves and abs(heard["ja"] - plain) < 0.5
    noisy = [Hiss().convert(a, VoiceTarget("x", a)) for a in said]
    dropped, heard = natural_languages(serves, noisy, judge.naturalness, profile)
    assert dropped == {"ja": "matched", "en": "matched"}
    assert heard["ja"] < plain - NATURALNESS_DROP


def test_the_evolved_voice_keeps_a_language_only_while_every_guard_hears_it_natural(
        ) -> None:
    """A guard the profile's record holds a plain score for holds the evolved voice too: a
    voice the first predictor passes (here one that hears nothing wrong) loses the language
    when the guard hears it under the rule; a profile measured before the guard keeps it."""
    from pipelines.voice.evolved import VERIFY_SENTENCES, natural_languages
    from pipelines.voice.profiles import Profile

    said = [Hiss().convert(a, VoiceTarget("x", a)) for a in
            (Audio(ojt_speech(SENTENCES[i % 3]), RATE) for i in range(len(VERIFY_SENTENCES)))]
    serves = {"ja": "evolved", "en": "matched"}
    guard = HissJudge()

    def profile(record: dict[str, Any]) -> Profile:
        return Profile(id="openvoice_00000001", name="P", language="ja", created_at="",
                       updated_at="", serving={"ja": record})

    plain = {"plain": {"naturalness": 4.5}}
    guarded = profile({**plain, "guards": {guard.name: 4.5}})
    kept, heard = natural_languages(serves, said, Lenient().naturalness, guarded)
    assert kept == serves and heard == {"ja": 4.5}  # no guard given: the first rules alone
    dropped, heard = natural_languages(serves, said, Lenient().naturalness, guarded,
                                       [(guard.name, guard.naturalness)])
    assert dropped == {"ja": "matched", "en": "matched"}
    assert heard == {"ja": 4.5, "ja:hiss-judge": 2.0}
    before, _ = natural_languages(serves, said, Lenient().naturalness, profile(plain),
                                  [(guard.name, guard.naturalness)])
    assert before == serves


def openjtalk_tools(tmp_path: Path) -> tuple[Any, np.ndarray, VoiceTarget]:
    """Serving tools over OpenJTalk and the timbre filter (no naturalness judge), and a
    "person" made from OpenJTalk's voice by Praat: its embedding and target."""
    from models.registry import create_engine
    from pipelines.voice.serving import ServingTools

    settings = EngineSettings(cache_dir=tmp_path / "cache")
    encoder = create_engine("voice_encoder", "resemblyzer", settings)
    tools = ServingTools(
        FallbackChain("tts", [create_engine("tts", "openjtalk", settings)]),
        FallbackChain("voice_converter", [create_engine("voice_converter", "timbre_filter",
                                                        settings)]),
        embed=lambda audio: encoder.embed([audio]), encoder_name="resemblyzer", judge=None,
        cache_dir=settings.cache_dir)
    person = apply_match(Audio(np.concatenate([ojt_speech(s) for s in SENTENCES]), RATE),
                         MatchParams(1.18, 230.0))
    embedding = encoder.embed([person])
    return tools, embedding, VoiceTarget("person", person, embedding)


def test_a_voice_is_as_near_as_it_sounds_over_its_three_sentences(tmp_path: Path) -> None:
    """One sentence's words and prosody move the speaker encoder's cosine about as much as
    the step from one voice to the next: a voice's nearness is its mean over the three
    sentences it says, and a conversion's is its voice's moved by what the conversion
    changed on the sentence it was tried on."""
    from models.base import SpeechRequest
    from models.voice.resemblyzer import cosine
    from pipelines.voice.serving import measure_language, sentences

    tools, embedding, target = openjtalk_tools(tmp_path)
    record = measure_language(tools, "ja", embedding, target)
    assert record is not None
    by = {(c["converter"], c["strength"]): c for c in record["candidates"]}
    engine = next(iter(tools.tts))
    said = [engine.synthesize(SpeechRequest(text, voice="mei", language="ja")).audio
            for text in sentences("ja")]
    assert len(said) == 3
    each = [cosine(tools.embed(audio), embedding) for audio in said]
    assert by[(None, 1.0)]["nearness"] == pytest.approx(float(np.mean(each)), abs=2e-4)
    assert record["plain"]["nearness"] == by[(None, 1.0)]["nearness"]
    filtered = next(iter(tools.converters)).convert(said[0], target)
    moved = cosine(tools.embed(filtered), embedding) - each[0]
    assert by[("timbre_filter", 1.0)]["nearness"] == pytest.approx(
        float(np.mean(each)) + moved, abs=2e-4)


def test_a_conversion_is_ranked_by_its_nearness_in_the_profiles_language(tmp_path: Path
                                                                         ) -> None:
    """In the other language the speaker encoder hears little of what a timbre filter
    changes (an English recording against Japanese speech); a conversion measured in the
    profile's own language is ranked there, one not measured there by its voice's basis
    moved by what it changed here."""
    from pipelines.voice.serving import measure_language

    tools, embedding, target = openjtalk_tools(tmp_path)

    def ranks(anchor: Any) -> dict[tuple[Any, float], dict[str, Any]]:
        record = measure_language(tools, "ja", embedding, target, anchor)
        assert record is not None
        return {(c["converter"], c["strength"]): c for c in record["candidates"]}

    own = ranks(None)
    assert own[("timbre_filter", 1.0)]["rank"] == own[("timbre_filter", 1.0)]["nearness"]
    anchored = ranks({("mei", None, 1.0): 0.5, ("mei", "timbre_filter", 1.0): 0.97})
    assert anchored[("timbre_filter", 1.0)]["rank"] == pytest.approx(0.97, abs=1e-4)
    assert anchored[("timbre_filter", 1.0)]["verdict"] == "served"  # first in line
    moved = own[("timbre_filter", 0.7)]["nearness"] - own[(None, 1.0)]["nearness"]
    assert anchored[("timbre_filter", 0.7)]["rank"] == pytest.approx(0.5 + moved, abs=1e-3)
    assert anchored[(None, 1.0)]["rank"] == pytest.approx(0.5, abs=1e-4)


class Voices:
    """A planted speech engine: "clear" says the text cleanly; "rough" and "rougher" say it
    under hiss (nearer the person by the embedding below, and unnatural)."""

    name = "planted-voices"
    HISS = {"clear": 0.0, "rough": 1.0, "rougher": 2.0}

    def synthesize(self, request: Any) -> Any:
        from types import SimpleNamespace

        speech = ojt_speech(SENTENCES[len(request.text) % len(SENTENCES)])
        noise = np.random.default_rng(2).standard_normal(len(speech)).astype(np.float32)
        hiss = self.HISS[request.voice] * float(np.std(speech))
        return SimpleNamespace(audio=Audio(speech + hiss * noise, RATE))


def hiss_share(audio: Audio) -> float:
    """How much of the signal is sample-to-sample change (white hiss: about 2; speech: low)."""
    samples = audio.samples.astype(np.float64)
    return float(np.mean(np.diff(samples) ** 2) / (np.mean(samples ** 2) + 1e-12))


class HissJudge:
    """A planted naturalness predictor: clean speech 4.5, hissy speech 2.0."""

    name = "hiss-judge"

    def available(self) -> tuple[bool, str]:
        return True, ""

    def close(self) -> None:
        pass

    def naturalness(self, audio: Audio) -> float:
        return 4.5 if hiss_share(audio) < 0.5 else 2.0


def toward_person(tmp_path: Path, converter: Any, embed: Any, judge: Any,
                  guards: tuple[Any, ...] = ()) -> dict[str, Any]:
    """The Japanese serving record of the planted sources (``source_voices`` patched by the
    test) through ``converter``, heard by ``embed``, ``judge`` and ``guards``, for a person
    whose embedding is [0, 1]."""
    from pipelines.voice import serving

    tools = serving.ServingTools(
        FallbackChain("tts", []), FallbackChain("voice_converter", [converter]), embed=embed,
        encoder_name=f"{converter.name}-{tmp_path.name}", judge=judge, cache_dir=tmp_path,
        guards=guards)
    embedding = np.array([0.0, 1.0])
    record = serving.measure_language(tools, "ja", embedding, VoiceTarget(
        "person", Audio(ojt_speech(SENTENCES[0]), RATE), embedding))
    assert record is not None
    return record


class Gentle(Backwards):
    """A converter that changes nothing a judge hears (the level only), so that every voice
    it starts from can serve through it exactly as far as the voice itself can."""

    name = "gentle"

    def convert(self, audio: Audio, target: VoiceTarget) -> Audio:
        return Audio(audio.samples * 0.9, audio.sample_rate)


def test_conversions_start_from_voices_natural_enough_to_serve(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The nearest voices can be the roughest: a filter on a voice already under the
    naturalness floor cannot serve, so conversions are tried on the nearest voices that can
    serve as they are, and the served candidate is one of them converted."""
    from pipelines.voice import serving
    from pipelines.voice.sources import SourceVoice

    engine = Voices()
    sources = [SourceVoice(v, "ja", engine, v) for v in ("clear", "rough", "rougher")]  # type: ignore[arg-type]
    monkeypatch.setattr(serving, "source_voices", lambda tts, language: sources)
    record = toward_person(tmp_path, Gentle(), lambda audio: np.array(
        [1.0, 4.0 * hiss_share(audio)]) / np.hypot(1.0, 4.0 * hiss_share(audio)), HissJudge())
    ranked = sorted((c for c in record["candidates"] if c["converter"] is None),
                    key=lambda c: -c["rank"])
    assert [c["voice"] for c in ranked] == ["rougher", "rough", "clear"]
    assert {c["voice"] for c in record["candidates"] if c["converter"] == "gentle"} == {"clear"}
    assert record["serves"]["voice"] == "clear"
    check_rule(record)


class Lenient(HissJudge):
    """A planted naturalness predictor that hears nothing wrong: 4.5 for any speech."""

    name = "lenient"

    def naturalness(self, audio: Audio) -> float:
        return 4.5


def test_a_voice_a_guard_hears_as_unnatural_serves_in_no_way(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first predictor can miss what a second hears (DistillMOS rates Kokoro's women
    speaking English above Piper's man, DNSMOS below). A voice under a guard's floor serves
    neither as it is nor converted, however near; without the guard the nearest serves."""
    from pipelines.voice import serving
    from pipelines.voice.sources import SourceVoice

    engine = Voices()
    sources = [SourceVoice(v, "ja", engine, v) for v in ("clear", "rough", "rougher")]  # type: ignore[arg-type]
    monkeypatch.setattr(serving, "source_voices", lambda tts, language: sources)

    def embed(audio: Audio) -> np.ndarray:
        return np.array([1.0, 4.0 * hiss_share(audio)]) / np.hypot(1.0, 4.0 * hiss_share(audio))

    unguarded = toward_person(tmp_path / "a", Gentle(), embed, Lenient())
    assert unguarded["serves"]["voice"] == "rougher" and unguarded["guards"] == {}
    guarded = toward_person(tmp_path / "b", Gentle(), embed, Lenient(), (HissJudge(),))
    assert guarded["serves"]["voice"] == "clear"
    assert guarded["guards"] == {"hiss-judge": 4.5}  # the plain voice's score
    verdicts = {(c["voice"], c["converter"]): c["verdict"] for c in guarded["candidates"]}
    assert {v for v, c in verdicts if c == "gentle"} == {"clear"}  # no filter on a rough one
    check_rule(guarded)
    # with no conversion to serve, the voices as they are: the guard refuses the rough ones
    as_is = toward_person(tmp_path / "c", Backwards(), embed, Lenient(), (HissJudge(),))
    verdicts = {(c["voice"], c["converter"]): c["verdict"] for c in as_is["candidates"]}
    assert verdicts[("rougher", None)] == verdicts[("rough", None)] == "unnatural by hiss-judge"
    assert verdicts[("clear", "backwards")] == "words lost"
    assert as_is["serves"] == {"voice": "clear", "converter": None, "strength": 1.0}
    check_rule(as_is)


def test_a_sources_words_are_analysed_once_for_all_its_conversions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The words check compares each conversion with its source at nine vocal-tract
    scalings: the source's side is made once per source, not once per conversion (every
    strength of the timbre filter here), and the scores are the same as checked alone."""
    from models.voice import words
    from pipelines.voice.serving import STRENGTHS, measure_language

    tools, embedding, target = openjtalk_tools(tmp_path)
    analysed: list[int] = []
    spectrogram = words._spectrogram

    def counting(audio: Audio) -> Any:
        analysed.append(id(audio.samples))
        return spectrogram(audio)

    monkeypatch.setattr(words, "_spectrogram", counting)
    record = measure_language(tools, "ja", embedding, target)
    assert record is not None
    filtered = [c for c in record["candidates"] if c["converter"] == "timbre_filter"]
    assert len(filtered) == len(STRENGTHS["timbre_filter"]) > 1
    assert len(analysed) == len(filtered) + 1  # each conversion once, its source once
    source = next(iter(tools.tts)).synthesize(SpeechRequest(
        sentences("ja")[0], voice="mei", language="ja")).audio
    for candidate in filtered:
        converted = next(iter(tools.converters)).convert(
            source, replace(target, strength=candidate["strength"]))
        assert candidate["words"] == pytest.approx(kept_words(converted, source), abs=1e-3)


def test_the_warm_up_says_every_sentence_before_it_judges_a_voice_plain_voices_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every profile needs every voice's sentences (nearness) and the plain voice's
    naturalness; only the nearest few voices' naturalness after that. The warm-up makes them
    in that order, so a profile that comes while it runs finds the most of what it needs."""
    from pipelines.voice import serving
    from pipelines.voice.sources import SourceVoice

    engine, judge = Voices(), HissJudge()
    events: list[tuple[str, str]] = []
    speak, hear = engine.synthesize, judge.naturalness

    def synthesize(request: Any) -> Any:
        events.append(("said", request.voice))
        return speak(request)

    def naturalness(audio: Audio) -> float:
        events.append(("judged", "rough" if hiss_share(audio) >= 0.5 else "clear"))
        return hear(audio)

    monkeypatch.setattr(engine, "synthesize", synthesize)
    monkeypatch.setattr(judge, "naturalness", naturalness)
    by_language = {lang: [SourceVoice(v, lang, engine, v)  # type: ignore[arg-type]
                          for v in (("clear", "rough") if lang == "ja" else ("rough", "clear"))]
                   for lang in ("ja", "en")}
    monkeypatch.setattr(serving, "source_voices", lambda tts, language: by_language[language])
    tools = serving.ServingTools(
        FallbackChain("tts", []), FallbackChain("voice_converter", []),
        embed=lambda audio: np.array([1.0, hiss_share(audio)]),
        encoder_name=f"order-{tmp_path.name}", judge=judge, cache_dir=tmp_path)
    assert serving.prepare_serving(tools, ["ja", "en"]) == 4
    kinds = [kind for kind, _ in events]
    assert kinds == ["said"] * 12 + ["judged"] * 12  # 2 languages x 2 voices x 3 sentences
    judged = [voice for kind, voice in events if kind == "judged"]
    assert judged[:6] == ["clear"] * 3 + ["rough"] * 3  # each language's plain voice first


class Louder(Backwards):
    """A converter that raises the level in proportion to its strength: the words stay (the
    words check ignores level), and the stronger, the nearer the person (by the embedding
    below) and the less natural (by the judge below)."""

    name = "louder"
    STEP = 1.0

    def convert(self, audio: Audio, target: VoiceTarget) -> Audio:
        return Audio(audio.samples * (1.0 + self.STEP * target.strength), audio.sample_rate)


def rms(audio: Audio) -> float:
    return float(np.sqrt(np.mean(np.square(audio.samples, dtype=np.float64))))


@pytest.mark.parametrize("strongest_natural", [None, 0.7, 1.3])
def test_strengths_are_judged_strongest_first_until_one_sounds_natural(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strongest_natural: float | None
        ) -> None:
    """Of one voice and converter, 1.3 is judged first, then 1.0, 0.7 and 0.4, each until
    one sounds natural, and that one serves: one judgement when 1.3 passes, three when 0.7
    is the strongest natural one, all four (and the voice as it is) when none is."""
    from types import SimpleNamespace

    from pipelines.voice import serving
    from pipelines.voice.calibration import CALIBRATION_TEXT
    from pipelines.voice.sources import SourceVoice

    engine = Voices()
    sources = [SourceVoice("clear", "ja", engine, "clear")]  # type: ignore[arg-type]
    monkeypatch.setattr(serving, "source_voices", lambda tts, language: sources)
    monkeypatch.setattr(serving, "STRENGTHS", {"louder": (1.3, 1.0, 0.7, 0.4)})
    loudest = max(rms(engine.synthesize(SimpleNamespace(text=t, voice="clear")).audio)
                  for t in sentences("ja"))
    said = rms(engine.synthesize(SimpleNamespace(text=CALIBRATION_TEXT["ja"],
                                                 voice="clear")).audio)
    room = 1.2 * loudest / said - 1.0  # the step at which a strength of 1 turns unnatural
    step = {None: 2.0, 0.7: room * (1.0 + 1.0 / 0.7) / 2.0, 1.3: room / 1.5}[strongest_natural]
    monkeypatch.setattr(Louder, "STEP", step)
    heard: list[float] = []

    class LevelJudge(HissJudge):
        def naturalness(self, audio: Audio) -> float:
            heard.append(rms(audio))
            return 4.5 if heard[-1] < 1.2 * loudest else 2.0

    record = toward_person(tmp_path, Louder(), lambda audio: np.array(
        [1.0, rms(audio) / loudest]) / np.hypot(1.0, rms(audio) / loudest), LevelJudge())
    converted = {c["strength"]: c for c in record["candidates"] if c["converter"] == "louder"}
    judged = [s for s in (1.3, 1.0, 0.7, 0.4) if converted[s]["naturalness"] is not None]
    expected = {None: [1.3, 1.0, 0.7, 0.4], 0.7: [1.3, 1.0, 0.7], 1.3: [1.3]}
    assert judged == expected[strongest_natural]
    conversions = heard[3:]  # after the plain voice's three sentences
    assert len(conversions) == len(judged) and conversions == sorted(conversions, reverse=True)
    assert record["serves"] == {"voice": "clear",
                                "converter": "louder" if strongest_natural else None,
                                "strength": strongest_natural or 1.0}
    check_rule(record)


@pytest.mark.parametrize("dip", [0.0012, 0.02])
def test_of_natural_strengths_the_strongest_serves_whatever_the_encoder_hears(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dip: float) -> None:
    """The speaker encoder stops hearing a filter's last steps toward the person while an
    outside judge still hears them. Here the encoder's nearness stops rising at strength 0.7
    and falls by ``dip`` for each further step of 0.3, and every strength is natural: 1.3
    serves, whether the dip is inside the encoder's resolution or clear."""
    from types import SimpleNamespace

    from pipelines.voice import serving
    from pipelines.voice.calibration import CALIBRATION_TEXT
    from pipelines.voice.sources import SourceVoice

    engine = Voices()
    sources = [SourceVoice("clear", "ja", engine, "clear")]  # type: ignore[arg-type]
    monkeypatch.setattr(serving, "source_voices", lambda tts, language: sources)
    monkeypatch.setattr(serving, "STRENGTHS", {"louder": (1.3, 1.0, 0.7, 0.4)})
    said = rms(engine.synthesize(SimpleNamespace(text=CALIBRATION_TEXT["ja"],
                                                 voice="clear")).audio)

    def embed(audio: Audio) -> np.ndarray:
        strength = max(0.0, rms(audio) / said - 1.0)  # what Louder did to the sentence
        near = 0.5 + 0.3 * min(strength, 0.7) / 0.7 - dip * max(0.0, strength - 0.7) / 0.3
        return np.array([np.sqrt(1.0 - near ** 2), near])

    record = toward_person(tmp_path, Louder(), embed, HissJudge())
    near = {c["strength"]: c["nearness"] for c in record["candidates"]
            if c["converter"] == "louder"}
    assert near[0.7] > near[1.0] > near[1.3]  # the encoder hears the weaker as (a bit) nearer
    assert record["serves"] == {"voice": "clear", "converter": "louder", "strength": 1.3}
    check_rule(record)
