"""How a profile's voice is served, in people's words: per language, which built-in voice the
speech starts from, what was done to it, and the three measures it was chosen on (nearness
to the person, naturalness, words kept), beside the plain voice's. Shown under a new profile
and on every sentence spoken in it. What was done is named in a few words (``change.*``) where
there are some, so the table's number columns keep their width; the rule under the table
and the engine line above a sentence say it is voice matching, not cloning."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.ui.text import plain, register, word

register(
    en={
        "serving.title": "How your profile speaks",
        "serving.language": "language", "serving.voice": "starts from",
        "serving.change": "then", "serving.near": "nearness to you",
        "serving.natural": "naturalness (1-5)", "serving.words": "words kept",
        "serving.as_is": "nothing: the nearest voice as it is",
        "serving.strength": "strength",
        "serving.judge.distillmos": "DistillMOS", "serving.judge.dnsmos_ovrl": "DNSMOS",
        "serving.header": "figures: the language's plain voice → your profile",
        "serving.rule": "The built-in voice nearest you, moved toward you by the strongest "
                        "conversion that still sounds natural (at most {drop} below the plain "
                        "voice, judged by {judge}{guards}) and keeps every word; failing that, "
                        "the next voice's, or a voice as it is. Voice matching, not cloning.",
        "serving.guards": "; each built-in voice also by {names}",
        "serving.spoken": "Measured for this profile in {language}",
        "conversion.timbre_filter":
            "voice matching: your recordings' formants and timbre, on average and for each kind "
            "of sound, applied as a filter, not cloning",
        "conversion.timbre_filter_kinds":
            "voice matching: your recordings' formants and timbre, on average and in full for "
            "each kind of sound, applied as a filter, not cloning",
        "conversion.formant_warp":
            "voice matching: the speech's formants moved toward your recordings' (up to 9 %), "
            "not cloning",
        "conversion.source_voice": "the built-in voice nearest yours, as it is",
        "change.timbre_filter": "filtered toward your recordings' formants and timbre",
        "change.timbre_filter_kinds":
            "filtered toward your recordings' formants and timbre, each sound in full",
        "change.formant_warp": "formants moved toward your recordings' (up to 9 %)",
    },
    ja={
        "serving.title": "このプロファイルの話し方",
        "serving.language": "言語", "serving.voice": "元の声",
        "serving.change": "加工", "serving.near": "あなたへの近さ",
        "serving.natural": "自然さ（1〜5）", "serving.words": "言葉の保持",
        "serving.as_is": "なし（最も近い声をそのまま）",
        "serving.strength": "強さ",
        "serving.judge.distillmos": "予測モデル DistillMOS",
        "serving.judge.dnsmos_ovrl": "予測モデル DNSMOS",
        "serving.header": "数値：その言語の標準の声 → あなたのプロファイル",
        "serving.rule": "あなたに最も近い内蔵の声を、自然さ（{judge} で判定{guards}）が標準の声から "
                        "{drop} 以内で言葉をすべて保つ範囲の最も強い加工で、あなたに近づけて使います"
                        "（できなければ次に近い声、または加工なしの声）。"
                        "声合わせであり、クローンではありません。",
        "serving.spoken": "このプロファイル用に {language} で測定",
        "serving.guards": "。内蔵の声はそれぞれ {names} でも判定",
        "conversion.timbre_filter":
            "声合わせ：録音の声道の響き（フォルマント）と、平均および音の種類ごとの音色をフィルタとして適用。"
            "クローンではありません",
        "conversion.timbre_filter_kinds":
            "声合わせ：録音の声道の響き（フォルマント）と、平均および音の種類ごとの音色（種類ごとの差は全量）を"
            "フィルタとして適用。クローンではありません",
        "conversion.formant_warp":
            "声合わせ：声道の響き（フォルマント）を録音に近づける方向へ最大 9 % 移動。"
            "クローンではありません",
        "conversion.source_voice": "あなたに最も近い内蔵の声をそのまま使用",
        "change.timbre_filter": "録音のフォルマントと音色に近づけるフィルタ",
        "change.timbre_filter_kinds": "録音のフォルマントと音色に近づけるフィルタ（音の種類ごとに全量）",
        "change.formant_warp": "フォルマントを録音の方向へ最大 9 % 移動",
    },
)


def _number(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


def _change(serves: dict[str, Any], lang: str) -> str:
    converter = serves.get("converter")
    if not converter:
        return plain("serving.as_is", lang)
    shown = str(converter)
    for key in (f"change.{converter}", f"conversion.{converter}"):  # a few words, if there are
        if plain(key, lang) != key:
            shown = plain(key, lang)
            break
    strength = serves.get("strength")
    if isinstance(strength, int | float) and strength != 1.0:
        # a no-break space: "%)" never starts a line of its own in a narrow column
        shown += f" ({plain('serving.strength', lang)} {round(100 * strength)}\u00a0%)"
    return shown


def serving_summary(profile: dict[str, Any], lang: str,
                    voice_name: Callable[[str], str] = str) -> str:
    """A Markdown table: one row per language the profile was measured for
    (``voice_name`` names a built-in voice for people)."""
    serving = profile.get("serving") or {}
    if not serving:
        return ""
    head = ["serving.language", "serving.voice", "serving.change", "serving.near",
            "serving.natural", "serving.words"]
    rows = [
        "| " + " | ".join(plain(k, lang) for k in head) + " |",
        "|" + "---|" * len(head),
    ]
    judge, drop = "", 0.0
    guards: list[str] = []
    for language, record in serving.items():
        serves, scores, base = record["serves"], record["scores"], record.get("plain") or {}
        judge = record.get("judge") or judge
        guards += [g for g in record.get("guards") or {} if g not in guards]
        drop = (record.get("rule") or {}).get("naturalness_drop", drop)
        rows.append(
            f"| {language} | {voice_name(serves['voice'])} | {_change(serves, lang)} | "
            f"{_number(base.get('nearness'))} → **{_number(scores.get('nearness'))}** | "
            f"{_number(base.get('naturalness'))} → **{_number(scores.get('naturalness'))}** | "
            f"{_number(scores.get('words'))} |")
    named = ", ".join(word("serving.judge.", g, lang) for g in guards)
    rule = plain("serving.rule", lang).format(
        drop=drop, judge=word("serving.judge.", judge, lang) if judge else "-",
        guards=plain("serving.guards", lang).format(names=named) if guards else "")
    return (f"**{plain('serving.title', lang)}** — {plain('serving.header', lang)}\n\n"
            + "\n".join(rows) + f"\n\n{rule}")


def spoken_line(report: dict[str, Any], lang: str, voice_name: Callable[[str], str] = str
                ) -> str:
    """The engine line's note for speech said in a profile's measured voice ("" otherwise;
    ``voice_name`` names the built-in voice for people)."""
    serving = report.get("serving")
    if not serving:
        return ""
    scores = serving.get("scores") or {}
    where = plain("serving.spoken", lang).format(language=report.get("language", ""))
    return (f"**{where}:** {voice_name(str(serving.get('voice')))} · {_change(serving, lang)} · "
            f"{plain('serving.near', lang)} {_number(scores.get('nearness'))} · "
            f"{plain('serving.natural', lang)} {_number(scores.get('naturalness'))} · "
            f"{plain('serving.words', lang)} {_number(scores.get('words'))}")
