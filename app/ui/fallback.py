"""What people read when an engine was passed over, in their language.

A fallback chain records every engine it passed over with the engine's own reason ("no
weights in …/models/… run ``python -m app.models download``"): words for operators, shown in
the Engines panel and ``/health``. People see a note only when it tells them something: when
an engine the operator chose (named in ``STUDIO_<CAPABILITY>_BACKENDS``) was skipped, or when
an engine that was there failed. On a default offline install the offline engines *are* the
defaults, so a message made by them carries no note.

The note says what made the result and why the other engine did not, in plain words: "Made
with the built-in face animator; neural lip-sync (Wav2Lip) weights are not installed — an
administrator can add them in Models."
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.ui.text import plain, register

Chosen = Mapping[str, frozenset[str]]
"""capability -> the engines the operator named for it (capabilities left at the default
are absent)."""

# Each engine in people's words, by capability (one engine name can serve two capabilities).
register(
    en={
        "engine.tts.kokoro": "the Kokoro neural voice", "engine.tts.piper": "the Piper voice",
        "engine.tts.openjtalk": "the OpenJTalk voice",
        "engine.tts.voicevox": "the VOICEVOX service",
        "engine.voice_converter.openvoice": "neural voice conversion (OpenVoice)",
        "engine.voice_converter.frame_matching": "voice matching from your recordings",
        "engine.voice_converter.timbre_filter": "voice matching by your recordings' timbre",
        "engine.voice_converter.timbre_filter_kinds":
            "voice matching by your recordings' timbre, each kind of sound in full",
        "engine.voice_converter.formant_warp": "voice matching by your recordings' formants",
        "engine.naturalness.distillmos": "the naturalness measure (DistillMOS)",
        "engine.naturalness.dnsmos": "the naturalness measure (DNSMOS)",
        "engine.voice_converter.voice_matching": "pitch and formant voice matching",
        "engine.denoise.deepfilternet": "neural noise removal (DeepFilterNet)",
        "engine.voice_encoder.resemblyzer": "the voice measure (Resemblyzer)",
        "engine.person_detection.mediapipe": "the person finder (MediaPipe)",
        "engine.cutout.birefnet": "the high-detail cutout (BiRefNet)",
        "engine.cutout.segformer": "the SegFormer cutout",
        "engine.cutout.mediapipe": "the quick cutout (MediaPipe)",
        "engine.cutout.aws": "the online cutout service (Amazon)",
        "engine.refiner.sam2": "the SAM 2 edge refinement",
        "engine.refiner.closed_form": "the built-in edge refinement",
        "engine.talking_head.wav2lip": "neural lip-sync (Wav2Lip)",
        "engine.talking_head.builtin": "the built-in face animator",
        "engine.talking_head.did": "the online talking-head service (D-ID)",
        "fallback.made_with": "Made with {used}",
        "fallback.weights": "{engine} weights are not installed — an administrator can add "
                            "them in Models",
        "fallback.service": "{engine} did not answer — try again later",
        "fallback.failed": "{engine} failed on this input",
        "fallback.other": "{engine} is not available right now",
    },
    ja={
        "engine.tts.kokoro": "Kokoro ニューラル音声", "engine.tts.piper": "Piper 音声",
        "engine.tts.openjtalk": "OpenJTalk 音声",
        "engine.tts.voicevox": "VOICEVOX サービス",
        "engine.voice_converter.openvoice": "ニューラル声質変換（OpenVoice）",
        "engine.voice_converter.frame_matching": "録音からの声合わせ",
        "engine.voice_converter.timbre_filter": "録音の音色による声合わせ",
        "engine.voice_converter.timbre_filter_kinds": "録音の音色による声合わせ（音の種類ごとに全量）",
        "engine.voice_converter.formant_warp": "録音のフォルマントによる声合わせ",
        "engine.naturalness.distillmos": "自然さの計測（DistillMOS）",
        "engine.naturalness.dnsmos": "自然さの計測（DNSMOS）",
        "engine.voice_converter.voice_matching": "ピッチとフォルマントによる声合わせ",
        "engine.denoise.deepfilternet": "ニューラル雑音除去（DeepFilterNet）",
        "engine.voice_encoder.resemblyzer": "声の特徴の計測（Resemblyzer）",
        "engine.person_detection.mediapipe": "人物検出（MediaPipe）",
        "engine.cutout.birefnet": "高精細な切り抜き（BiRefNet）",
        "engine.cutout.segformer": "SegFormer の切り抜き",
        "engine.cutout.mediapipe": "簡易切り抜き（MediaPipe）",
        "engine.cutout.aws": "オンライン切り抜きサービス（Amazon）",
        "engine.refiner.sam2": "SAM 2 による輪郭の精密化",
        "engine.refiner.closed_form": "内蔵の輪郭の精密化",
        "engine.talking_head.wav2lip": "ニューラル口パク（Wav2Lip）",
        "engine.talking_head.builtin": "内蔵の顔アニメーション",
        "engine.talking_head.did": "オンライン動画生成サービス（D-ID）",
        "fallback.made_with": "{used}で作成しました",
        "fallback.weights": "{engine}の重みが入っていません（管理者が「モデル」から追加できます）",
        "fallback.service": "{engine}が応答しませんでした（しばらくしてからお試しください）",
        "fallback.failed": "{engine}はこの入力で失敗しました",
        "fallback.other": "{engine}は現在使えません",
    },
)

# The image steps as their reports name them -> the capability whose chain ran them.
OPERATION_CAPABILITY = {"background_removal": "cutout", "matte_refinement": "refiner",
                        "sam2_refinement": "refiner", "person_detection": "person_detection"}


def operator_choices(settings: Any) -> dict[str, frozenset[str]]:
    """The engines the operator named, per capability (``STUDIO_<CAPABILITY>_BACKENDS``);
    a capability left at its default order is absent."""
    from models.registry import CAPABILITIES

    chosen: set[str] = getattr(settings, "model_fields_set", set())
    return {capability: frozenset(settings.backends(capability)) for capability in CAPABILITIES
            if f"{capability}_backends" in chosen}


def engine_name(capability: str, backend: str | None, lang: str) -> str:
    """An engine in people's words (its own name when the catalogue has none)."""
    key = f"engine.{capability}.{backend}"
    text = plain(key, lang)
    return str(backend) if text == key else text


def _why(capability: str, attempt: Mapping[str, Any], lang: str) -> str:
    engine = engine_name(capability, attempt.get("backend"), lang)
    reason = str(attempt.get("reason") or "").lower()
    if attempt.get("outcome") == "failed":
        kind = "failed"
    elif "weights" in reason or "not installed" in reason or "checkpoint" in reason:
        kind = "weights"
    elif any(w in reason for w in ("_url", "http", "circuit", "timed out", "connect",
                                   "unreachable", "service")):
        kind = "service"
    else:
        kind = "other"
    return plain(f"fallback.{kind}", lang).format(engine=engine)


def worth_telling(capability: str, attempt: Mapping[str, Any], chosen: Chosen) -> bool:
    """Whether people hear of this passed-over engine: it failed, or the operator chose it."""
    if attempt.get("outcome") == "used":
        return False
    return attempt.get("outcome") == "failed" or attempt.get("backend") in chosen.get(
        capability, frozenset())


def fallback_note(capability: str, used: str | None, attempts: Iterable[Mapping[str, Any]],
                  chosen: Chosen, lang: str = "en") -> str:
    """"Made with X; Y weights are not installed — …" for one chain's run, or "" when
    nothing worth telling was passed over."""
    told = [_why(capability, a, lang) for a in attempts if worth_telling(capability, a, chosen)]
    if not told:
        return ""
    made = plain("fallback.made_with", lang).format(used=engine_name(capability, used, lang))
    sep = "。" if lang == "ja" else "; "
    end = "。" if lang == "ja" else "."
    return sep.join([made, *told]) + end


def passed_over_notes(passed: Iterable[Mapping[str, Any]], chosen: Chosen,
                      lang: str = "en") -> list[str]:
    """Notes for a job's record of passed-over engines (``{"capability", "used",
    "attempts"}`` per chain run), one per chain with something worth telling."""
    notes = []
    for run in passed:
        note = fallback_note(str(run.get("capability")), run.get("used"),
                             run.get("attempts") or (), chosen, lang)
        if note and note not in notes:
            notes.append(note)
    return notes
