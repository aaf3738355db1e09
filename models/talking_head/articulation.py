"""Phoneme timeline -> mouth controls: visemes, coarticulation, and the jaw ahead of the sound.

Why our own and not a library: the one kept library for this, ``openfacefx`` (MIT, numpy
only), maps English phonemes to the 15 Oculus visemes as sparse keyframe curves for game
rigs; our rig has four continuous shapes (open, spread, round, close) and our engines speak
Japanese in three spellings (OpenJTalk's romaji, Kokoro's IPA, VOICEVOX's morae) as well as
English IPA (Piper, Kokoro's English). Mapping its curves onto our shapes would be a second
table of the same size as the one below, plus its keyframe format to decode per frame.

The model (Cohen & Massaro's coarticulation, in its simplest form): every phoneme has a
*target* (how far each shape is pulled) and a *dominance* (how strongly it holds that target
against its neighbours: lips must meet on /m b p/, a /k/ takes the shape of the vowels around
it). The controls at time t are the dominance-weighted mean of the targets near t (a
normalised convolution on a 5 ms grid with a short Gaussian, so shapes blend into their
neighbours instead of snapping). Silence is a target too: lips together, gaining dominance
the longer it lasts, but a gap between two words (under ``WORD_GAP``) is not silence: the
lips stay parted through it. The whole track is read ``LEAD`` seconds ahead: the jaw and
lips move before the sound they make (the mouth leads the audio by some tens of ms in
connected speech; read 10 ms ahead, the lips rose and fell with the loudness frame for
frame). Only the meeting of the lips on /m b p/ keeps closer to the sound
(:data:`~models.talking_head.visemes.LIPS_LEAD`): their closure *is* that silence or
murmur. Consonants between vowels nearly close the jaw, so the lips open and close at
syllable rate; the loudness of each syllable scales the opening a little (a stressed syllable
opens wider), never more: the timing, not the envelope, decides when the mouth moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.base import Timing

GRID = 200  # Hz: the articulation grid (5 ms)
LEAD = 0.04  # s: the jaw and lips read the timeline this far ahead of the sound (see below)
SMOOTH = 0.035  # s: sigma of the coarticulation blend
WORD_GAP = 0.12  # s: a silence shorter than this between two words leaves the lips parted


@dataclass(frozen=True)
class Viseme:
    """A phoneme's mouth target (each in [0, 1]) and how strongly it holds it."""

    open: float
    spread: float
    round: float
    close: float
    dominance: float


VISEMES: dict[str, Viseme] = {
    # vowels
    "a": Viseme(1.0, 0.05, 0.0, 0.0, 0.75),
    "e": Viseme(0.7, 0.6, 0.0, 0.0, 0.65),
    "i": Viseme(0.45, 1.0, 0.0, 0.0, 0.65),
    "o": Viseme(0.75, 0.0, 1.0, 0.0, 0.7),
    "u": Viseme(0.42, 0.0, 0.6, 0.0, 0.6),
    "schwa": Viseme(0.6, 0.1, 0.0, 0.0, 0.45),
    # English lax vowels: the jaw lower and the lips less spread / rounded than /i/, /u/
    "lax_i": Viseme(0.6, 0.5, 0.0, 0.0, 0.55),
    "lax_u": Viseme(0.55, 0.0, 0.5, 0.0, 0.5),
    # consonants
    "m": Viseme(0.0, 0.0, 0.0, 1.0, 1.0),  # m b p: the lips meet
    # f v: the lower lip rises to the upper teeth; the lips do not meet (a narrow gap the
    # height of the teeth's edge). Pressed 70 % closed, every English /f v/ blinked shut.
    "f": Viseme(0.25, 0.1, 0.0, 0.0, 0.9),
    "phi": Viseme(0.05, 0.1, 0.0, 0.7, 0.9),  # ɸ β (Japanese fu): both lips, nearly meeting
    "w": Viseme(0.12, 0.0, 1.0, 0.2, 0.85),  # w: rounded, nearly closed
    "sh": Viseme(0.3, 0.0, 0.7, 0.1, 0.6),  # sh ch j zh: lips forward
    "t": Viseme(0.45, 0.3, 0.0, 0.0, 0.35),  # t d n s z l r th: the jaw half up, lips apart
    "k": Viseme(0.65, 0.0, 0.0, 0.0, 0.15),  # k g ng h y: the tongue works, the jaw follows
    "rest": Viseme(0.0, 0.0, 0.0, 1.0, 0.5),  # silence: lips together
}

# Engine spellings -> visemes. OpenJTalk: romaji, devoiced vowels in capitals, N (moraic
# nasal), cl (geminate closure: takes the next consonant's shape). Kokoro (Japanese) and
# espeak (Piper, Kokoro English): IPA, one symbol per token.
_SYMBOLS: dict[str, str] = {}
for _key, _symbols in {
    "a": "a A ɑ æ ʌ ɐ aː ɑː ä ᴀ ɶ",
    "e": "e E ɛ eː ɛː ɜ ɜː œ ø ε",
    "i": "i I iː y ʏ",
    "o": "o O ɔ ɒ oː ɔː ɵ ɤ",
    "u": "u U ɯ uː ɯː ʉ ɨ ᵝ",  # ɨ: Kokoro's Japanese "su", "tsu" (unrounded u)
    "schwa": "ə ɚ ᵊ ɐ̃ ɘ ɞ",
    "lax_i": "ɪ ᵻ",
    "lax_u": "ʊ",
    "m": "m b p my by py ɱ ɓ ʙ ʘ",
    "f": "f v ʋ ⱱ",
    "phi": "ɸ β",
    "w": "w ʍ ɥ ɰ",
    "sh": "sh ch j zh ʃ ʒ ɕ ʑ ʨ ʥ tʃ dʒ ʧ ʤ ꭧ ɧ",
    "t": "t d n s z l r ɾ ɹ ts ʦ ʣ θ ð ɬ nj ny ɲ dy ty N ɴ ɫ ɖ ʈ ɳ ɽ ɭ ɺ ɻ ɮ ʂ ʐ ɗ ʎ",
    "k": "k g ɡ ŋ h ç x ɣ ʔ q ky gy hy ry y j̃ ʝ c ɟ ɦ χ ʁ ʀ ɢ ħ ʕ ʜ ʢ ʡ ɠ ʛ ʄ ʟ",
}.items():
    for _s in _symbols.split():
        _SYMBOLS.setdefault(_s, _key)
_SYMBOLS["j"] = "k"  # IPA /j/ (y as in "yes"); OpenJTalk's "j" (ji) is spelled "j" too, close
_SILENT = {"", "sil", "pau", "sp", "spn", "_", "^", "$", "#"}
_MARKS = set("ˈˌːˑʰʲˤ")  # espeak's marks: Piper times some (ʲ in "being") as phonemes
_REDUCED = {"schwa", "lax_i", "lax_u"}  # English's reduced vowels (see reduces_vowels)
_DEVOICED = set("AIUEO")  # OpenJTalk's devoiced vowels: said with little opening


def _romaji(phonemes: Sequence[Timing]) -> bool:
    """Whether the timeline is spelled in romaji (OpenJTalk, VOICEVOX): ASCII alone. An IPA
    timeline (espeak, Kokoro) with an /f/ in it nearly always holds ə ɪ ɹ æ ɾ ɯ or the like;
    one that does not only gets the closer ɸ for its /f/."""
    return bool(phonemes) and all(p.text.strip().isascii() for p in phonemes)


def reduces_vowels(phonemes: Sequence[Timing]) -> bool:
    """Whether the timeline spells reduced vowels (ə ɪ ʊ: English, as espeak and Kokoro's
    English write it), which carry its stress; Japanese spellings have none."""
    return any(viseme_key(p.text) in _REDUCED for p in phonemes)


def viseme_key(symbol: str) -> str | None:
    """The viseme a phoneme symbol is said with (None: silent or unknown)."""
    s = symbol.strip()
    if s in _SILENT:
        return None
    if s in _SYMBOLS:
        return _SYMBOLS[s]
    low = s.lower()
    if low in _SYMBOLS:
        return _SYMBOLS[low]
    base = s.rstrip("ːˑʲʷ̃ʰ")  # length, palatal, labial, nasal, aspiration marks
    if base in _SYMBOLS:
        return _SYMBOLS[base]
    if base[:1] in _SYMBOLS:  # a diphthong or affricate spelled as one token: its start
        return _SYMBOLS[base[:1]]
    return None


@dataclass(frozen=True)
class Controls:
    """The four mouth controls on the articulation grid, plus where a phoneme is said."""

    open: np.ndarray
    spread: np.ndarray
    round: np.ndarray
    close: np.ndarray
    spoken: np.ndarray  # 1 inside a phoneme, 0 in silence
    bilabials: tuple[tuple[float, float], ...]  # (start, end) s of each lip closure


def _targets(phonemes: Sequence[Timing], n: int) -> tuple[np.ndarray, np.ndarray,
                                                          np.ndarray, list[tuple[float, float]]]:
    """Per grid step: target (4 shapes), dominance, spoken flag; and the lip closures."""
    rest = VISEMES["rest"]
    target = np.tile(np.array([rest.open, rest.spread, rest.round, rest.close]), (n, 1))
    dominance = np.full(n, rest.dominance)
    spoken = np.zeros(n)
    closures: list[tuple[float, float]] = []
    keys = [viseme_key(p.text) for p in phonemes]
    if _romaji(phonemes):  # OpenJTalk's and VOICEVOX's "f" (fu) is the bilabial ɸ
        keys = ["phi" if k == "f" else k for k in keys]
    for k, ph in enumerate(phonemes):
        key = keys[k]
        symbol = ph.text.strip()
        if symbol == "cl":  # geminate: the closure of the consonant that follows
            key = next((x for x in keys[k + 1:k + 2] if x is not None), "t")
        elif key is None and symbol and set(symbol) <= _MARKS and k > 0:
            key = keys[k - 1]  # a timed mark (a palatal glide) goes on with the sound before
        if key is None:
            continue
        lo = max(0, int(round(ph.start * GRID)))
        hi = min(n, max(lo + 1, int(round(ph.end * GRID))))
        if hi <= lo:
            continue
        v = VISEMES[key]
        scale = 0.5 if symbol in _DEVOICED else 1.0
        target[lo:hi] = (v.open * scale, v.spread, v.round, v.close)
        dominance[lo:hi] = v.dominance
        spoken[lo:hi] = 1.0
        if key == "m":
            closures.append((ph.start, ph.end))
    # A silence gains dominance with its length: a short gap between words barely closes
    # the mouth, a pause between phrases brings the lips together.
    silent = spoken == 0
    run = np.zeros(n)
    count = 0
    for i in range(n):
        count = count + 1 if silent[i] else 0
        run[i] = count
    back = np.zeros(n)
    count = 0
    for i in range(n - 1, -1, -1):
        count = count + 1 if silent[i] else 0
        back[i] = count
    length = np.where(silent, run + back - 1, 0) / GRID
    dominance = np.where(silent, rest.dominance * np.clip(length / 0.15, 0.15, 1.0) + 0.01,
                         dominance)
    # A gap shorter than WORD_GAP with sound on both sides is no pause at all: in connected
    # speech the lips do not meet between words (Piper leaves 20-70 ms untimed between
    # them while the voice goes on); the shapes on either side carry through it.
    if spoken.any():
        first = int(np.argmax(spoken))
        last = n - 1 - int(np.argmax(spoken[::-1]))
        step = np.arange(n)
        joint = silent & (length < WORD_GAP) & (step > first) & (step < last)
        dominance = np.where(joint, 0.01, dominance)
    return target, dominance, spoken, closures


def articulate(phonemes: Sequence[Timing], duration: float) -> Controls:
    """The mouth controls on the 5 ms grid over ``duration`` seconds (not yet led)."""
    from scipy.ndimage import gaussian_filter1d

    n = max(1, int(np.ceil(duration * GRID)) + 1)
    target, dominance, spoken, closures = _targets(phonemes, n)
    sigma = SMOOTH * GRID
    weight = gaussian_filter1d(dominance, sigma, mode="nearest")
    blended = gaussian_filter1d(target * dominance[:, None], sigma, axis=0, mode="nearest")
    blended /= np.maximum(weight, 1e-6)[:, None]
    blended = np.clip(blended, 0.0, 1.0)
    return Controls(blended[:, 0], blended[:, 1], blended[:, 2], blended[:, 3], spoken,
                    tuple(closures))


def sample(track: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``track`` (on the grid) read at ``times`` seconds."""
    grid = np.arange(len(track)) / GRID
    values: np.ndarray = np.interp(times, grid, track)
    return values
