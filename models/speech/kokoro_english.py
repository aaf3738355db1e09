"""English phonemes for Kokoro: espeak-ng (the phonemizer piper-tts ships) spelled the way
Kokoro-82M's vocabulary spells American English.

The bundled Kokoro has Japanese G2P only, but its vocabulary is IPA in misaki's spelling,
so espeak-ng's IPA drives it once diphthongs and affricates are folded into misaki's
single symbols (``aɪ`` -> ``I``, ``tʃ`` -> ``ʧ``, ...). Used only for voices evolved for a
profile: built-in English voices stay on Piper.
"""

from __future__ import annotations

import re
import threading
import unicodedata

ESPEAK_VOICE = "en-us"

# espeak-ng IPA -> misaki symbols, longest first (the table misaki's own espeak fallback uses,
# American variant).
_TO_MISAKI: tuple[tuple[str, str], ...] = tuple(sorted({
    "ʔˌn̩": "ʔn", "ʔn̩": "ʔn", "ʔ": "t",
    "aɪ": "I", "aʊ": "W", "eɪ": "A", "oʊ": "O", "ɔɪ": "Y", "əʊ": "O",
    "dʒ": "ʤ", "tʃ": "ʧ",
    "ɜːɹ": "ɜɹ", "ɜː": "ɜɹ", "ɚɹ": "əɹ", "ɚ": "əɹ",
    "e": "A", "r": "ɹ", "x": "k", "ç": "k", "ɐ": "ə", "ɬ": "l", "ʲ": "", "ː": "",
    "ɾ": "T", "n̩": "ᵊn", "l̩": "ᵊl",
}.items(), key=lambda kv: -len(kv[0])))

_LOCK = threading.Lock()
_READY: list[bool] = []


def _bridge() -> object:
    from piper import espeakbridge
    from piper.phonemize_espeak import ESPEAK_DATA_DIR

    with _LOCK:
        if not _READY:
            espeakbridge.initialize(str(ESPEAK_DATA_DIR))
            _READY.append(True)
    return espeakbridge


def to_misaki(ipa: str) -> str:
    """espeak-ng IPA -> Kokoro's spelling (symbols Kokoro lacks are dropped later)."""
    out: list[str] = []
    text = unicodedata.normalize("NFC", ipa)
    i = 0
    while i < len(text):
        for source, target in _TO_MISAKI:
            if text.startswith(source, i):
                out.append(target)
                i += len(source)
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def english_phonemes(text: str) -> str:
    """English text -> Kokoro phoneme string, clause punctuation kept."""
    bridge = _bridge()
    with _LOCK:  # espeak-ng is one global state
        bridge.set_voice(ESPEAK_VOICE)  # type: ignore[attr-defined]
        clauses = bridge.get_phonemes(text)  # type: ignore[attr-defined]
    pieces: list[str] = []
    for phonemes, terminator, _end in clauses:
        spoken = re.sub(r"\([^)]*\)", "", str(phonemes))  # language-switch flags
        pieces.append(to_misaki(spoken) + str(terminator))
    return " ".join(p.strip() for p in pieces if p.strip())
