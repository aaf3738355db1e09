"""Text for speech: normalise, then cut into units that each end in a pause.

Local engines synthesize one unit at a time and put silences of a known length between
units, so punctuation pauses are exact and scale with the ``pause`` option:
``、`` 0.3 s, ``。`` 0.5 s, ``！？`` 0.6 s, line break 0.4 s (English: ``,`` ``.`` ``!?``).

Japanese numbers, dates, times and phone numbers are rewritten as katakana readings taken
from OpenJTalk's frontend (which reads ``3月5日`` as サンガツイツカ), because Kokoro's own
frontend reads digits one counter-less number at a time (``3,500`` -> "san, gohyaku").
Latin words stay: OpenJTalk's dictionary gives loanword readings (Hello -> ハロー) and
spells unknown ones letter by letter (AI -> エーアイ).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass

PAUSES = {"、": 0.3, "，": 0.3, ",": 0.3, "。": 0.5, ".": 0.5, "！": 0.6, "？": 0.6,
          "!": 0.6, "?": 0.6, "\n": 0.4, "…": 0.5, "；": 0.3, ";": 0.3, "：": 0.3}
MAX_UNIT_CHARS = 120
"""Longer clauses are cut at spaces or, failing that, at this many characters (Kokoro's
phoneme limit is 510 tokens; ~120 Japanese characters stay far below it)."""

_JA_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")
_lock = threading.Lock()


@dataclass(frozen=True)
class Unit:
    """A piece of text said in one breath, the punctuation that ended it and the pause after."""

    text: str
    end: str
    pause: float
    sentence: int  # index of the sentence it belongs to


def is_japanese(text: str) -> bool:
    return bool(_JA_CHAR.search(text))


# -------------------------------------------------------------------- Japanese numbers

_COUNTERS = ("年|ヶ月|か月|カ月|月|日|時間|時|分|秒|円|個|人|回|歳|才|%|℃|度|本|枚|杯|匹|"
             "階|番|号|台|冊|件|点|倍|週間|週|世紀|キロ|メートル|グラム|位|位")
_NUMBER = re.compile(r"(?P<neg>(?<![0-9A-Za-z])[-−])?(?P<num>\d{1,3}(?:,\d{3})+|\d+)(?P<dec>\.\d+)?"
                     rf"(?P<counter>{_COUNTERS})?")
_DATE_SLASH = re.compile(r"(?<!\d)(\d{4})[/\-](\d{1,2})[/\-](\d{1,2})(?!\d)")
_TIME = re.compile(r"(?<!\d)(\d{1,2}):(\d{2})(?!\d)")
_PHONE = re.compile(r"(?<!\d)(0\d{1,4})-(\d{1,4})-(\d{3,4})(?!\d)")
_DIGIT_KANA = "ゼロ イチ ニー サン ヨン ゴー ロク ナナ ハチ キュー".split()
_SYMBOLS = {"&": "アンド", "+": "プラス", "=": "イコール", "@": "アット", "#": "シャープ",
            "$": "ドル", "€": "ユーロ", "¥": "円", "~": "から", "〜": "から", "～": "から"}


def _reading(text: str) -> str:
    """OpenJTalk's katakana reading of a short span (numbers with their counter)."""
    import pyopenjtalk

    with _lock:
        kana = pyopenjtalk.g2p(text, kana=True, use_sudachi_kanji_yomi=False)
    return str(kana).replace("、", "").replace("。", "")


def _number(match: re.Match[str]) -> str:
    num = match["num"].replace(",", "")
    span = num + (match["dec"] or "") + (match["counter"] or "")
    reading = _reading(span)
    return ("マイナス" if match["neg"] else "") + reading


def normalize_ja(text: str) -> str:
    """Rewrite what Kokoro's frontend misreads (digits, dates, times, symbols) as kana."""
    text = unicodedata.normalize("NFKC", text).replace("°C", "℃")
    text = _PHONE.sub(lambda m: "、".join("".join(_DIGIT_KANA[int(d)] for d in g)
                                         for g in m.groups()), text)
    text = _DATE_SLASH.sub(lambda m: f"{int(m[1])}年{int(m[2])}月{int(m[3])}日", text)
    text = _TIME.sub(lambda m: f"{int(m[1])}時" + (f"{int(m[2])}分" if int(m[2]) else ""), text)
    text = _NUMBER.sub(_number, text)
    for symbol, word in _SYMBOLS.items():
        text = text.replace(symbol, word)
    return text


def normalize_en(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return text.replace("&", " and ").replace("%", " percent")


# ---------------------------------------------------------------------------- units


def _cut_long(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        cut = cut if cut > limit // 3 else limit
        pieces.append(text[:cut].strip())
        text = text[cut:].strip()
    if text:
        pieces.append(text)
    return pieces


def split_units(text: str, *, pause: float = 1.0, max_chars: int = MAX_UNIT_CHARS) -> list[Unit]:
    """Cut normalised text into units at punctuation; each unit carries its pause (scaled).

    English full stops inside numbers or abbreviations ("3.5", "e.g.") do not end a unit:
    a ``.`` ends one only when followed by a space or the end.
    """
    units: list[Unit] = []
    sentence = 0
    buf = ""
    i = 0
    while i < len(text):
        ch = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        ends = ch in PAUSES and not (ch in ".," and nxt and not nxt.isspace())
        if not ends:
            buf += ch
            i += 1
            continue
        # a run of punctuation ("！？", "。\n") counts once, with the longest pause
        j = i
        while j < len(text) and text[j] in PAUSES:
            j += 1
        run = text[i:j]
        longest = max(run, key=lambda c: PAUSES[c])
        for piece in _cut_long(buf.strip(), max_chars):
            units.append(Unit(piece, "", 0.0, sentence))
        if units and units[-1].sentence == sentence and not units[-1].end and buf.strip():
            last = units[-1]
            units[-1] = Unit(last.text, longest, PAUSES[longest] * pause, sentence)
        elif units and units[-1].sentence == sentence:  # punctuation with nothing before it
            last = units[-1]
            units[-1] = Unit(last.text, last.end or longest,
                             max(last.pause, PAUSES[longest] * pause), sentence)
        if any(c in "。.！？!?\n…" for c in run):
            sentence += 1
        buf = ""
        i = j
    for piece in _cut_long(buf.strip(), max_chars):
        units.append(Unit(piece, "", 0.0, sentence))
    # long unpunctuated pieces get a short breath between them
    return [u if u.end or k == len(units) - 1 else Unit(u.text, u.end, 0.15 * pause, u.sentence)
            for k, u in enumerate(units) if u.text]


def sentence_texts(text: str, sep: str = "") -> list[str]:
    """The sentences of ``text`` as written (with their end punctuation)."""
    grouped: dict[int, list[str]] = {}
    for unit in split_units(unicodedata.normalize("NFKC", text)):
        grouped.setdefault(unit.sentence, []).append(unit.text + unit.end.strip())
    return [sep.join(parts) for parts in grouped.values()]
