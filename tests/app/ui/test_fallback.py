"""The note people read when an engine was passed over: only for an engine the operator chose
(or one that failed), in the page's language, never the engine's own diagnostic."""

from __future__ import annotations

from typing import Any

from app.ui.fallback import fallback_note, operator_choices, passed_over_notes
from app.ui.message import describe
from app.ui.text import plain

NO_WEIGHTS = {"backend": "wav2lip", "outcome": "skipped",
              "reason": "no weights in /data/models/wav2lip (missing wav2lip_gan.pth); run "
                        "`python -m app.models download wav2lip` or set STUDIO_ALLOW_DOWNLOADS=1"}
RESULT: dict[str, Any] = {
    "engines": {"video": "builtin", "voice": {"tts": "kokoro", "conversion": "tts"},
                "image": {"background_removal": "mediapipe", "matte_refinement": "closed_form"}},
    "emotion": "celebration", "duration": 4.2, "size": "512x512", "processing_time": 9.1,
    "fallback_used": True,
    "passed_over": [{"capability": "talking_head", "used": "builtin", "attempts": [NO_WEIGHTS]}],
}


def test_a_default_install_says_nothing_of_its_defaults(settings: Any) -> None:
    """The offline engines are the defaults: wav2lip without weights is no news."""
    assert operator_choices(settings) == {}
    notes = describe(RESULT, "en", operator_choices(settings))
    assert "⚠" not in notes and "fallback" not in notes and "wav2lip" not in notes


def test_an_engine_the_operator_chose_is_told_in_people_words(settings: Any) -> None:
    chosen = operator_choices(settings.model_copy(
        update={"talking_head_backends": ["wav2lip", "builtin"]}))
    assert chosen == {"talking_head": frozenset({"wav2lip", "builtin"})}
    en = describe(RESULT, "en", chosen)
    assert ("⚠ Made with the built-in face animator; neural lip-sync (Wav2Lip) weights are not "
            "installed — an administrator can add them in Models.") in en
    ja = describe(RESULT, "ja", chosen)
    assert "内蔵の顔アニメーションで作成しました" in ja and "「モデル」から追加できます" in ja
    for text in (en, ja):  # the operator's words stay in the Engines panel and /health
        assert "python -m" not in text and "STUDIO_" not in text and "/data/models" not in text


def test_a_failure_is_told_even_on_a_default_install() -> None:
    failed = {"backend": "kokoro", "outcome": "failed", "reason": "onnxruntime: bad input"}
    note = fallback_note("tts", "piper", [failed], {}, "en")
    assert note == "Made with the Piper voice; the Kokoro neural voice failed on this input."
    assert "onnxruntime" not in note
    service = {"backend": "voicevox", "outcome": "skipped", "reason": "connection refused"}
    assert "VOICEVOX サービスが応答しませんでした" in fallback_note(
        "tts", "kokoro", [service], {"tts": frozenset({"voicevox"})}, "ja")
    assert fallback_note("tts", "kokoro", [service], {}, "en") == ""
    twice = [{"capability": "tts", "used": "piper", "attempts": [failed]}] * 2
    assert len(passed_over_notes(twice, {}, "en")) == 1


def test_a_profile_summary_says_what_the_numbers_mean(services: Any) -> None:
    """The profile summary: the closest voice by name (a blend as a mix with shares), the
    nearness as percentages with what each step is, the converter that serves marked; no
    raw similarity, blend syntax or ids."""
    from app.ui import voice_desk
    from app.ui.voice import profile_summary, voice_label

    desk = voice_desk(services)

    blend = "jm_kumo:0.51+jf_gongitsune:0.49"
    assert voice_label(desk, blend, "en") == (
        "a mix of Kumo (Kokoro) 51 % + Gongitsune (Kokoro) 49 %")
    assert voice_label(desk, "jm_kumo", "ja") == "Kumo (Kokoro)"
    pitched = "jm_kumo/jm_kumo:0.5+jf_nezumi:0.5"  # Kumo's sound, a half-woman's prosody
    assert voice_label(desk, pitched, "en") == (
        "Kumo (Kokoro), speaking with the pitch and rhythm of a mix of Kumo (Kokoro) 50 % + "
        "Nezumi (Kokoro) 50 %")
    assert voice_label(desk, pitched, "ja") == (
        "Kumo (Kokoro)（声の高さと抑揚は Kumo (Kokoro) 50 % + Nezumi (Kokoro) 50 % の組み合わせ）")
    profile = {"id": "openvoice_0123abcd", "name": "Hanako", "matching": {
        "source_voice": blend, "similarity": {"source": 0.4598, "matched": 0.5505,
                                              "served": 0.6427, "served_by": "frame_matching",
                                              "serves": "frame_matching"}}}
    en = profile_summary(profile, "en", 9.04, lambda v: voice_label(desk, v, "en"))
    assert "**Hanako** is ready (9.0 s)" in en
    assert "Closest built-in voice: **a mix of Kumo (Kokoro) 51 %" in en
    assert ("46 % as the built-in voice → 55 % after voice matching (pitch and formants) → "
            "64 % rebuilt from your recordings' sounds — this one speaks for the profile") in en
    ja = profile_summary(profile, "ja", None, lambda v: voice_label(desk, v, "ja"))
    assert "Kumo (Kokoro) 51 % + Gongitsune (Kokoro) 49 % の組み合わせ" in ja
    assert "録音の音から再合成 64 %（これでプロファイルが話します）" in ja
    for text in (en, ja):
        for raw in ("0.4598", "0.6427", ":0.", "openvoice_", "frame_matching"):
            assert raw not in text, (raw, text)
    matched = {**profile["matching"], "similarity": {"source": 0.4, "matched": 0.6,
                                                     "served": 0.5, "served_by": "frame_matching",
                                                     "serves": "voice_matching"}}
    text = profile_summary({**profile, "matching": matched}, "en", None, str)
    assert "60 % after voice matching (pitch and formants) — this one speaks" in text
    # measured on three axes, the serving table names each language's voice: the voice the
    # matching was calibrated on is not called the closest, nor its nearness shown
    served = {**profile, "serving": {"en": {"serves": {"voice": "jf_alpha"}}}}
    for lang in ("en", "ja"):
        text = profile_summary(served, lang, None, str)
        assert "**Hanako**" in text and "gongitsune" not in text.lower() and "%" not in text, text
        assert plain("voice.not_cloning", lang) in text


def test_the_saved_profiles_table_names_the_voice_each_profile_speaks_from(services: Any
                                                                            ) -> None:
    """The table named the voice matching was calibrated on as the "closest built-in
    voice", a voice a measured profile does not speak from; now it names the voice the
    serving measure chose for the profile's own language (a profile made before that
    record: the calibrated voice still), in the page's language."""
    from types import SimpleNamespace

    import numpy as np

    from app.ui import voice_desk
    from app.ui.voice import SHOWN_COLUMNS, shown_rows, ui_profiles
    from models.base import Audio, MatchingCalibration
    from pipelines.voice.profiles import Profile

    desk = voice_desk(services)
    calibrated = MatchingCalibration("praat", "en_joe", {}, {})
    served = {"ja": {"serves": {"voice": "jf_nezumi"}}, "en": {"serves": {"voice": "jm_kumo"}}}
    column = SHOWN_COLUMNS.index("col.starts_from")
    for lang in ("en", "ja"):
        request = SimpleNamespace(headers={"accept-language": lang})
        store = ui_profiles(desk, request)
        for pid, name, serving in (("voice_0000aaaa", "Measured", served),
                                   ("voice_0000bbbb", "Older", None)):
            store.save(Profile(pid, name, "ja", "2026-12-05T10:30:00Z",
                               "2026-12-05T10:30:00Z", matching=calibrated, serving=serving),
                       Audio(np.zeros(2400, np.float32), 24000), np.ones(4, np.float32))
        rows = {row[0]: row[column] for row in shown_rows(desk, request)}
        assert "Nezumi (Kokoro)" in rows["Measured"] and "Joe" not in rows["Measured"], rows
        assert "Joe" in rows["Older"], rows
        assert "Kumo" not in rows["Measured"]  # the profile's own language serves the name
        assert plain("col.starts_from", lang) != "col.starts_from"
