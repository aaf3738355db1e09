"""A profile's evolved voice: a Kokoro style tensor searched to sound like the person.

Not a cloned recording: the voice is one of Kokoro's built-in style tensors moved by a
search (:mod:`pipelines.voice.evolve`) until its speech scores close to the profile's
clips. This module holds what ties that search to a profile:

* :class:`EvolveScorer` — the profile's reference split into scoring clips and one held-out
  clip the fitness never sees; a candidate says two short sentences (one Japanese, one
  English) and is scored by speaker embedding, acoustic features and the self-similarity
  of its two sentences.
* :func:`evolve_profile` — start from the best built-in voice or blend, search within a time
  budget, checkpoint, then let the evolved voice and the quick match say sentences the
  search never said (:func:`verify`) and record on the profile which voice serves each
  language (``evolution.serves``; ``voice_source``: ``"matched"`` or ``"evolved"``) with
  the scores before and after.

Speaking in the evolved voice (once a search made one) is :mod:`pipelines.voice.evolved_speech`.

Files, next to the profile's reference: ``evolved.npz`` (the base voice and the 256-value
delta: about 1 KB) and ``evolve_checkpoint.npz`` (the search state a resumed job reads).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.base import EVOLVED_VOICE, Audio, SpeechRequest, StyleSpace
from models.chain import FallbackChain
from models.errors import BackendUnavailable, NotFound
from models.voice import acoustic
from models.voice.resemblyzer import cosine
from pipelines.voice import evolve as voice_evolve
from pipelines.voice.evolve import Evaluation, SearchState
from pipelines.voice.profiles import CHECKPOINT_FILE, EVOLVED_FILE, Profile, ProfileStore

LABEL = "evolved built-in voice (Kokoro style search), not a cloned recording"
LABEL_JA = "進化させた内蔵音声（Kokoro スタイル探索）。録音の複製ではありません"
SEARCH_SENTENCES: tuple[tuple[str, str], ...] = (
    ("ja", "今日はとても良い天気ですね。"),
    ("en", "Thank you so much for coming today."),
)
"""What every candidate says: one sentence per language, so that the fitness rewards a
voice that stays the same person across languages and sentences."""
VERIFY_SENTENCES: tuple[tuple[str, str], ...] = (
    ("ja", "明日の朝、駅の前で待っています。"),
    ("en", "I will wait for you at the station tomorrow."),
    ("ja", "週末は一緒に夕ご飯を食べましょう。"),
    ("en", "Let us have dinner together at the weekend."),
)
"""What decides, per language, whether the evolved voice serves (never searched on): two
sentences a language, as one sentence's score moves by a few hundredths on its own."""
WEIGHTS = {"speaker": 0.6, "acoustic": 0.25, "self": 0.15}
HELD_OUT_WEIGHTS = {"speaker": 0.75, "acoustic": 0.25}
SILENCE_GAP_S = 0.2
HELD_OUT_MIN_S = 2.0
CHUNK_S = 6.0
STYLE_DIMS = 256
MIN_GAIN = 0.02
"""How much better on the held-out clip the evolved voice must be to replace the quick match:
more than the few hundredths a voice's score moves between sentences, since the search has
climbed the same encoder that scores it and its small leads tend not to hold for an
independent ear."""

Embed = Callable[[Audio], np.ndarray]


# ------------------------------------------------------------------ the profile's clips


def split_reference(reference: Audio) -> tuple[list[Audio], Audio]:
    """The reference (clips joined by silent gaps) -> (scoring clips, held-out clip).

    The last clip is held out; with a single clip its last third is. Long clips are cut
    into pieces of about :data:`CHUNK_S` so the scoring target averages several views."""
    rate = reference.sample_rate
    quiet = np.abs(reference.samples) < 1e-6
    gap = int(SILENCE_GAP_S * rate)
    pieces: list[np.ndarray] = []
    start = 0
    run = 0
    for i, q in enumerate(quiet):
        run = run + 1 if q else 0
        if run == gap:
            end = i - gap + 1
            if end - start > rate // 2:
                pieces.append(reference.samples[start:end])
            start = i + 1
        elif run > gap:
            start = i + 1
    if len(reference.samples) - start > rate // 2:
        pieces.append(reference.samples[start:])
    if len(pieces) >= 2 and len(pieces[-1]) >= HELD_OUT_MIN_S * rate:
        held, scoring = pieces[-1], pieces[:-1]
    else:
        whole = np.concatenate(pieces) if pieces else reference.samples
        cut = int(len(whole) * 2 / 3)
        held, scoring = whole[cut:], [whole[:cut]]
    chunk = int(CHUNK_S * rate)
    chunks = [p[i:i + chunk] for p in scoring for i in range(0, len(p), chunk)
              if len(p[i:i + chunk]) >= rate]
    return [Audio(c, rate) for c in chunks or scoring], Audio(held, rate)


@dataclass(frozen=True)
class Target:
    """What a voice is scored against: mean speaker embedding and acoustic features."""

    embedding: np.ndarray
    features: np.ndarray

    @classmethod
    def of(cls, clips: Sequence[Audio], embed: Embed) -> Target:
        vectors = np.array([embed(c) for c in clips])
        mean = vectors.mean(axis=0)
        return cls((mean / (np.linalg.norm(mean) + 1e-9)).astype(np.float32),
                   np.mean([acoustic.features(c) for c in clips], axis=0))


# -------------------------------------------------------------------------- the scorer


class EvolveScorer:
    """Scores a voice pack by what it sounds like saying :data:`SEARCH_SENTENCES`."""

    def __init__(self, kokoro: StyleSpace, embed: Embed, reference: Audio,
                 sentences: Sequence[tuple[str, str]] | None = None,
                 finish: Callable[[Audio], Audio] | None = None) -> None:
        self.kokoro = kokoro
        self.embed = embed
        self.finish = finish or (lambda audio: audio)
        self.sentences = tuple(sentences or SEARCH_SENTENCES)
        scoring, held = split_reference(reference)
        self.target = Target.of(scoring, embed)
        self.held_out = Target.of([held], embed)
        self.evaluations = 0

    def speak(self, pack: np.ndarray, sentences: Sequence[tuple[str, str]] | None = None
              ) -> list[Audio]:
        """The sentences in ``pack``'s voice as the profile would serve them (``finish``:
        its voice converter), side by side (the ONNX run frees the GIL)."""
        styled = self.kokoro.styled(pack)

        def say(item: tuple[str, str]) -> Audio:
            language, text = item
            return self.finish(styled.synthesize(SpeechRequest(text, voice=EVOLVED_VOICE,
                                                               language=language)).audio)

        with ThreadPoolExecutor(max(1, self.kokoro.unit_workers)) as pool:
            return list(pool.map(say, sentences or self.sentences))

    def score(self, audios: Sequence[Audio],
              sentences: Sequence[tuple[str, str]] | None = None) -> Evaluation:
        """Fitness from the scoring clips; the held-out score from the held-out clip.
        ``sentences``: what ``audios`` say, when not the search's own."""
        said = tuple(sentences or self.sentences)
        self.evaluations += 1
        vectors = [self.embed(a) for a in audios]
        feats = [acoustic.features(a) for a in audios]
        speaker = float(np.mean([cosine(v, self.target.embedding) for v in vectors]))
        sound = float(np.mean([acoustic.similarity(f, self.target.features) for f in feats]))
        pairs = [(i, j) for i in range(len(vectors)) for j in range(i + 1, len(vectors))]
        self_sim = float(np.mean([cosine(vectors[i], vectors[j]) for i, j in pairs])) \
            if pairs else 1.0
        fitness = (WEIGHTS["speaker"] * speaker + WEIGHTS["acoustic"] * sound
                   + WEIGHTS["self"] * self_sim)
        held_each = [HELD_OUT_WEIGHTS["speaker"] * cosine(v, self.held_out.embedding)
                     + HELD_OUT_WEIGHTS["acoustic"]
                     * acoustic.similarity(f, self.held_out.features)
                     for v, f in zip(vectors, feats, strict=True)]
        parts = {"speaker": round(speaker, 4), "acoustic": round(sound, 4),
                 "self": round(self_sim, 4)}
        for language in {language for language, _ in said}:
            mine = [h for h, (lang, _) in zip(held_each, said, strict=True) if lang == language]
            parts[f"held_out_{language}"] = round(float(np.mean(mine)), 4)
        return Evaluation(round(fitness, 5), round(float(np.mean(held_each)), 5), parts)

    def evaluate(self, pack: np.ndarray) -> Evaluation:
        return self.score(self.speak(pack))


def style_spread(kokoro: StyleSpace) -> np.ndarray:
    """How much the built-in voices differ in each of the 256 style values (mean over the
    length rows): the scale of a mutation in that value."""
    packs = np.stack([_rows(kokoro.pack(v)) for v in kokoro.style_voices()])  # (voices, rows, 256)
    return np.asarray(packs.std(axis=0).mean(axis=0), np.float32)


def _rows(pack: np.ndarray) -> np.ndarray:
    """A voice pack as (length rows, 256) (the packs ship as (510, 1, 256))."""
    return np.asarray(pack, np.float32).reshape(-1, STYLE_DIMS)


def voice_directions(kokoro: StyleSpace, base: str) -> np.ndarray:
    """Rows: each built-in voice minus the base (mean over the length rows): moving along
    them leans towards, or beyond, another voice."""
    origin = _rows(kokoro.pack(base)).mean(axis=0)
    rows = [_rows(kokoro.pack(v)).mean(axis=0) - origin for v in kokoro.style_voices()]
    return np.asarray([r for r in rows if np.linalg.norm(r) > 1e-6], np.float32)


def choose_base(kokoro: StyleSpace, scorer: EvolveScorer, hint: str | None,
                trying: Callable[[str], None] = lambda voice: None
                ) -> tuple[str, Evaluation]:
    """The built-in voice (or the quick match's blend, or a blend of the best two) whose
    speech scores best: where the search starts. ``trying(voice)`` hears of each one."""
    scored: dict[str, Evaluation] = {}
    names = kokoro.style_voices()
    if hint and hint not in names:
        try:
            kokoro.parse_blend(hint)
            names.append(hint)
        except Exception:
            pass
    for name in names:
        trying(name)
        scored[name] = scorer.evaluate(kokoro.pack(name))
    ranked = sorted(scored, key=lambda n: scored[n].fitness, reverse=True)
    first, second = ranked[0], ranked[1]
    if "+" not in first and "+" not in second:
        blend = f"{first}:0.5+{second}:0.5"
        trying(blend)
        scored[blend] = scorer.evaluate(kokoro.pack(blend))
    best = max(scored, key=lambda n: scored[n].fitness)
    return best, scored[best]


# ------------------------------------------------------------------------- the profile


class ProfileFiles:
    """The evolved voice's files in the profile store's storage."""

    def __init__(self, store: ProfileStore, profile_id: str) -> None:
        self.storage = store.storage
        self.profile_id = profile_id

    def key(self, name: str) -> str:
        return ProfileStore.key(self.profile_id, name)

    def save_voice(self, base: str, delta: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, base=np.array(base), delta=np.asarray(delta, np.float32))
        self.storage.put(self.key(EVOLVED_FILE), buffer.getvalue())

    def load_voice(self) -> tuple[str, np.ndarray] | None:
        try:
            data = self.storage.get(self.key(EVOLVED_FILE))
        except NotFound:
            return None
        with np.load(io.BytesIO(data)) as npz:
            return str(npz["base"]), npz["delta"].astype(np.float32)

    def save_checkpoint(self, base: str, quick: Evaluation, state: SearchState) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, base=np.array(base), quick=np.array(json.dumps(_eval_dict(quick))),
                 state=np.frombuffer(state.to_bytes(), np.uint8))
        self.storage.put(self.key(CHECKPOINT_FILE), buffer.getvalue())

    def load_checkpoint(self) -> tuple[str, Evaluation, SearchState] | None:
        """The base voice, the quick match's scores and the search state, if saved."""
        try:
            data = self.storage.get(self.key(CHECKPOINT_FILE))
        except NotFound:
            return None
        try:
            with np.load(io.BytesIO(data)) as npz:
                quick = json.loads(str(npz["quick"]))
                return (str(npz["base"]),
                        Evaluation(float(quick["fitness"]), float(quick["held_out"]),
                                   {str(k): float(v) for k, v in quick["parts"].items()}),
                        SearchState.from_bytes(npz["state"].tobytes()))
        except (OSError, ValueError, KeyError):
            return None  # a torn checkpoint: start again

    def drop_voice(self) -> None:
        self.storage.delete(self.key(EVOLVED_FILE))

    def drop_checkpoint(self) -> None:
        self.storage.delete(self.key(CHECKPOINT_FILE))


def kokoro_of(tts: FallbackChain[Any]) -> StyleSpace:
    for engine in tts:
        if isinstance(engine, StyleSpace) and engine.available()[0]:
            return engine
    raise BackendUnavailable("Evolving a voice needs the Kokoro engine.",
                             code="VOICE_SERVICE_UNAVAILABLE",
                             message_ja="声の進化には Kokoro エンジンが必要です。", retry_after=30)


class QuickMatchStore(ProfileStore):
    """The profile store as the quick match sees it: the evolved voice does not serve, so
    a profile that evolved before is measured again by what it would be without."""

    def get(self, profile_id: str) -> Profile:
        profile = super().get(profile_id)
        profile.voice_source = "matched"
        return profile


def quick_match_score(scorer: EvolveScorer, say_quick: Callable[[str, str], Audio],
                      sentences: Sequence[tuple[str, str]] | None = None) -> Evaluation:
    """The held-out score of what the profile serves without an evolved voice."""
    said = tuple(sentences or scorer.sentences)
    return scorer.score([say_quick(text, language) for language, text in said], said)


def verify(scorer: EvolveScorer, pack: np.ndarray, say_quick: Callable[[str, str], Audio]
           ) -> tuple[Evaluation, Evaluation]:
    """The evolved voice and the quick match saying sentences the search never said,
    scored against the held-out clip: the search climbed on its own sentences, so only
    new ones tell whether the voice, not those sentences, came nearer."""
    said = VERIFY_SENTENCES
    return (scorer.score(scorer.speak(pack, said), said),
            quick_match_score(scorer, say_quick, said))


@dataclass
class EvolveOutcome:
    """How a run ended: ``finished`` false when it paused to let other work go first."""

    finished: bool
    reason: str
    record: dict[str, Any]


def evolve_profile(
    *, profile: Profile, store: ProfileStore, tts: FallbackChain[Any], embed: Embed,
    say_quick: Callable[[str, str], Audio], budget_s: float, seed: int = 0,
    patience: int = 8, pause: Callable[[], bool] | None = None,
    finish: Callable[[Audio], Audio] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[str], None] = lambda what: None,
    naturalness: Callable[[Audio], float] | None = None,
    guards: Sequence[tuple[str, Callable[[Audio], float]]] = (),
) -> EvolveOutcome:
    """Search (or go on searching) a style for ``profile``; record the outcome on it.

    ``say_quick(text, language)`` says a sentence the way the profile is served today
    (its quick match). ``finish(audio)`` is what serving does to the evolved voice's speech
    (the profile's voice converter), so candidates are scored as they would be heard.
    ``pause()`` is asked between steps: true checkpoints and returns
    (``finished`` false) so that a job can make way for other work. ``on_step`` gets the
    live record (iteration, scores) after each step and ``on_start`` each thing measured
    before the first step (the quick match, each candidate base voice); both may raise to
    cancel. ``naturalness`` (a predictor's MOS) holds the evolved voice to the quick match's
    rule: it serves a language only while it sounds as natural as the profile's serving
    measure allows there (:func:`natural_languages`), by each of ``guards`` (name, predictor)
    too."""
    kokoro = kokoro_of(tts)
    files = ProfileFiles(store, profile.id)
    began = time.perf_counter()
    scorer = EvolveScorer(kokoro, embed, store.reference(profile.id), finish=finish)
    resumed = files.load_checkpoint()
    if resumed is not None:
        base, quick_eval, state = resumed
    else:
        on_start("quick match")
        quick_eval = quick_match_score(scorer, say_quick)
        hint = profile.matching.source_voice if profile.matching else None
        base, base_eval = choose_base(kokoro, scorer, hint, on_start)
        state = voice_evolve.start(lambda d: base_eval if not d.any() else
                                   scorer.evaluate(kokoro.pack(base) + d), STYLE_DIMS,
                                   seed=seed)
        state.seconds += time.perf_counter() - began
    base_pack = kokoro.pack(base)
    spread = style_spread(kokoro)

    def record(status: str) -> dict[str, Any]:
        best = state.best_eval
        return {
            "status": status, "label": LABEL, "label_ja": LABEL_JA, "base_voice": base,
            "iteration": state.iteration, "accepted": state.accepted,
            "seconds": round(state.seconds, 1), "budget_s": budget_s,
            "start": _eval_dict(state.start_eval), "best": _eval_dict(best),
            "quick": _eval_dict(quick_eval),
            "gain_held_out": round(best.held_out - quick_eval.held_out, 4),
            "gain_held_out_by_language": {
                k.removeprefix("held_out_"): round(v - quick_eval.parts.get(k, 0.0), 4)
                for k, v in best.parts.items() if k.startswith("held_out_")},
        }

    def step(current: SearchState) -> None:
        if current.iteration % 3 == 0:
            files.save_checkpoint(base, quick_eval, current)
        if on_step is not None:
            on_step(record("running"))

    files.save_checkpoint(base, quick_eval, state)
    state, reason = voice_evolve.run(
        state, lambda d: scorer.evaluate(base_pack + d), spread, budget_s=budget_s,
        patience=patience, directions=voice_directions(kokoro, base),
        pause=(lambda _s: pause()) if pause is not None else None, on_step=step)
    files.save_checkpoint(base, quick_eval, state)
    if reason == "paused":
        evolution = record("paused")
        store.set_evolution(profile.id, evolution)
        return EvolveOutcome(False, reason, evolution)
    on_start("verification")
    checked, checked_quick = verify(scorer, base_pack + state.best, say_quick)
    serves = serving_languages(checked, checked_quick)
    heard: dict[str, float] = {}
    if naturalness is not None and "evolved" in serves.values():
        said = scorer.speak(base_pack + state.best, VERIFY_SENTENCES)
        serves, heard = natural_languages(serves, said, naturalness, profile, guards)
    source = "evolved" if "evolved" in serves.values() else "matched"
    evolution = {**record("done"), "stopped": reason, "voice_source": source, "serves": serves,
                 "verified": {"evolved": _eval_dict(checked), "quick": _eval_dict(checked_quick)},
                 "naturalness": heard}
    if source == "evolved":
        files.save_voice(base, state.best)
    else:
        files.drop_voice()  # an earlier search's voice no longer serves
    store.set_evolution(profile.id, evolution, voice_source=source)
    files.drop_checkpoint()
    return EvolveOutcome(True, reason, evolution)


def serving_languages(evolved: Evaluation, quick: Evaluation) -> dict[str, str]:
    """Per language, which voice serves: the evolved one only where its held-out score (on
    :data:`VERIFY_SENTENCES`) beats the quick match's by :data:`MIN_GAIN` (e.g. Japanese
    may gain while English, said by Piper in the quick match, does not)."""
    out: dict[str, str] = {}
    for key, value in evolved.parts.items():
        if key.startswith("held_out_"):
            language = key.removeprefix("held_out_")
            quick_value = quick.parts.get(key, quick.held_out)
            out[language] = "evolved" if value > quick_value + MIN_GAIN else "matched"
    return out


def natural_languages(serves: dict[str, str], said: Sequence[Audio],
                      naturalness: Callable[[Audio], float], profile: Profile,
                      guards: Sequence[tuple[str, Callable[[Audio], float]]] = ()
                      ) -> tuple[dict[str, str], dict[str, float]]:
    """The evolved voice keeps a language only where its predicted naturalness (mean over
    that language's :data:`VERIFY_SENTENCES`) stays within the serving rule's drop of the
    plain voice's, as the profile's serving measure recorded it: the search climbs nearness
    alone and must not buy it with the voice. So for each of ``guards`` (name, predictor)
    whose score of the plain voice the record holds (``guards``). Returns the serving map and
    the scores (a guard's as ``{language}:{name}``)."""
    from pipelines.voice.serving import NATURALNESS_DROP

    heard: dict[str, float] = {}
    out = dict(serves)
    for language in serves:
        mine = [audio for (lang, _), audio in zip(VERIFY_SENTENCES, said, strict=True)
                if lang == language]
        if not mine or serves[language] != "evolved":
            continue
        record = (profile.serving or {}).get(language) or {}
        rules = [(language, naturalness, (record.get("plain") or {}).get("naturalness"))]
        rules += [(f"{language}:{name}", guard, (record.get("guards") or {}).get(name))
                  for name, guard in guards]
        for label, predict, plain in rules:
            if label != language and not isinstance(plain, int | float):
                continue  # a profile measured before this guard
            heard[label] = round(float(np.mean([predict(audio) for audio in mine])), 4)
            if isinstance(plain, int | float) and heard[label] < plain - NATURALNESS_DROP:
                out[language] = "matched"
    return out, heard


def _eval_dict(evaluation: Evaluation) -> dict[str, Any]:
    return {"fitness": evaluation.fitness, "held_out": evaluation.held_out,
            "parts": dict(evaluation.parts)}
