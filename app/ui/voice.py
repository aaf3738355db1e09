"""The Voice tab: speak text in a built-in voice or a profile; make and manage profiles.

Gradio API names (for ``gradio_client``): ``/synthesize``, ``/create_profile``,
``/list_profiles``, ``/delete_profile``. Speaking in a profile's voice by DSP is called
"voice matching" here, never cloning.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio.context import get_blocks_context

import app.ui.voice_evolve as evolve_panel
from app.i18n import step_text
from app.ui.fallback import Chosen, engine_name, fallback_note, operator_choices
from app.ui.owners import remember, ui_owner, ui_visibility
from app.ui.text import (
    label,
    plain,
    register,
    request_language,
    shown_time,
    studio_error,
    t,
)
from app.ui.text import table as headed
from app.ui.voice_profiles import (
    VoiceDesk,
    clip_paths,
    clip_rows,
    profile_summary,
    wait_for_profile,
)
from app.ui.voice_serving import serving_summary, spoken_line
from app.usecases import voices
from models.errors import StudioError
from pipelines.voice.profiles import Profile, ProfileStore

register(
    en={
        "voice.intro": "Type what to say, pick a voice, listen. Make a voice profile from "
                       "1-5 recordings (3-30 s each, 3 recommended) to speak in a voice near "
                       "yours.",
        "voice.text": "Text (up to 1000 characters)", "voice.voice": "Voice",
        "voice.language": "Language", "voice.speed": "Speed", "voice.pitch": "Pitch (semitones)",
        "voice.intonation": "Intonation", "voice.volume": "Volume", "voice.pause": "Pauses",
        "voice.speak": "Synthesize", "voice.audio": "Speech", "voice.engine": "Engine",
        "voice.profiles": "Voice profiles", "voice.name": "Profile name",
        "voice.upload": "Recordings (wav, mp3, flac, m4a, ogg, webm)",
        "voice.mic": "Or record from the microphone", "voice.check": "Check clips",
        "voice.create": "Create profile", "voice.clip_table": "Clip checks",
        "voice.list": "Saved profiles", "voice.refresh": "Refresh",
        "voice.delete_id": "Profile to delete", "voice.delete": "Delete profile",
        "voice.result": "Result",
        "voice.matched": "Voice", "voice.matching": "voice matching",
        "voice.not_cloning": "DSP voice matching, not cloning",
        "voice.sample": "Hello! Today is March 5th, 2024, and the weather is lovely.",
        "voice.ready": "✅ **{name}** is ready",
        "voice.closest": "Closest built-in voice: **{voice}**",
        "voice.mix": "a mix of {parts}",
        "voice.prosody": "{timbre}, speaking with the pitch and rhythm of {prosody}",
        "voice.nearness": "How near it sounds to your recordings (100 % would be the same "
                          "voice): {steps}",
        "voice.near.source": "{value} as the built-in voice",
        "voice.near.matched": "{value} after voice matching (pitch and formants)",
        "voice.near.served": "{value} rebuilt from your recordings' sounds",
        "voice.near.serves": " — this one speaks for the profile",
        "verdict.ok": "good", "verdict.warning": "usable (see note)",
        "verdict.rejected": "not usable",
        "clip.a few clipped samples": "a few samples too loud",
        "clip.background noise (denoised)": "background noise (removed)",
        "conversion.frame_matching":
            "voice matching: rebuilt from your recordings' frames (WORLD vocoder), not cloning",
        "conversion.voice_matching": "voice matching: pitch and formants (Praat), not cloning",
        "col.id": "id", "col.name": "name", "col.language": "language", "col.clips": "clips",
        "col.seconds": "seconds", "col.matching_from": "closest built-in voice",
        "col.starts_from": "speaks from",
        "col.created": "created", "col.clip": "clip", "col.verdict": "verdict",
        "col.speech_s": "speech s", "col.snr": "SNR dB", "col.note": "note",
    },
    ja={
        "voice.intro": "話す内容を入力し、声を選んで再生します。1〜5 個の録音（各 3〜30 秒、"
                       "推奨 3 個）からボイスプロファイルを作ると、あなたに近い声で話せます。",
        "voice.text": "テキスト（1000 文字まで）", "voice.voice": "声",
        "voice.language": "言語", "voice.speed": "話速", "voice.pitch": "ピッチ（半音）",
        "voice.intonation": "抑揚", "voice.volume": "音量", "voice.pause": "間（ま）",
        "voice.speak": "音声合成", "voice.audio": "音声", "voice.engine": "エンジン",
        "voice.profiles": "ボイスプロファイル", "voice.name": "プロファイル名",
        "voice.upload": "録音ファイル（wav, mp3, flac, m4a, ogg, webm）",
        "voice.mic": "またはマイクで録音", "voice.check": "クリップを確認",
        "voice.create": "プロファイル作成", "voice.clip_table": "クリップの確認結果",
        "voice.list": "保存済みプロファイル", "voice.refresh": "更新",
        "voice.delete_id": "削除するプロファイル", "voice.delete": "プロファイル削除",
        "voice.result": "結果",
        "voice.matched": "声", "voice.matching": "声合わせ",
        "voice.not_cloning": "DSP による声合わせ（クローンではありません）",
        "voice.sample": "こんにちは。今日は2024年3月5日、いい天気ですね！",
        "voice.ready": "✅ **{name}** ができました",
        "voice.closest": "いちばん近い内蔵ボイス：**{voice}**",
        "voice.mix": "{parts} の組み合わせ",
        "voice.prosody": "{timbre}（声の高さと抑揚は {prosody}）",
        "voice.nearness": "録音した声への近さ（100 % なら同じ声）：{steps}",
        "voice.near.source": "内蔵ボイスのまま {value}",
        "voice.near.matched": "声合わせ（ピッチとフォルマント）後 {value}",
        "voice.near.served": "録音の音から再合成 {value}",
        "voice.near.serves": "（これでプロファイルが話します）",
        "verdict.ok": "良好", "verdict.warning": "使えます（メモ参照）",
        "verdict.rejected": "使えません",
        "clip.a few clipped samples": "一部の音が大きすぎます",
        "clip.background noise (denoised)": "背景の雑音（除去済み）",
        "conversion.frame_matching":
            "声合わせ：録音のフレームから再合成（WORLD ボコーダ）。クローンではありません",
        "conversion.voice_matching": "声合わせ：ピッチとフォルマント（Praat）。クローンではありません",
        "col.id": "ID", "col.name": "名前", "col.language": "言語", "col.clips": "録音数",
        "col.seconds": "秒", "col.matching_from": "いちばん近い内蔵ボイス",
        "col.starts_from": "元の声",
        "col.created": "作成日時", "col.clip": "録音", "col.verdict": "判定",
        "col.speech_s": "発話 秒", "col.snr": "SNR dB", "col.note": "メモ",
    },
)

PROFILE_PREFIX = "profile:"
"""Marks a profile among the dropdown's choices (the value is this plus the profile id)."""
# What the progress bar says during each step of pipelines.voice.create.PROFILE_STEPS.
register(
    en={"voice.step.queued": "waiting for a worker", "voice.step.decode": "reading the recordings",
        "voice.step.denoise": "removing background noise",
        "voice.step.checks": "checking the clips", "voice.step.embedding": "measuring the voice",
        "voice.step.matching search": "searching the closest voice",
        "voice.step.save": "saving the profile"},
    ja={"voice.step.queued": "順番待ち", "voice.step.decode": "録音を読み込み中",
        "voice.step.denoise": "雑音を除去中", "voice.step.checks": "クリップを確認中",
        "voice.step.embedding": "声の特徴を計算中",
        "voice.step.matching search": "近い声を探索中", "voice.step.save": "プロファイルを保存中"},
)
CLIP_COLUMNS = ["col.clip", "col.verdict", "col.seconds", "col.speech_s", "col.snr",
                "col.note"]
PROFILE_COLUMNS = ["col.id", "col.name", "col.language", "col.clips", "col.seconds",
                   "col.matching_from", "col.created"]
"""``/list_profiles`` (scripts read the id in the first column)."""
SHOWN_COLUMNS = ["col.name", "col.language", "col.clips", "col.seconds", "col.starts_from",
                 "col.created"]
"""The profiles table people see: names and dates, no ids."""
CLIP_HEADERS = [plain(k) for k in CLIP_COLUMNS]
PROFILE_HEADERS = [plain(k) for k in PROFILE_COLUMNS]
SHOWN_HEADERS = [plain(k) for k in SHOWN_COLUMNS]


def _error(exc: StudioError, request: Any = None) -> gr.Error:
    return studio_error(exc, request_language(request))


def ui_profiles(desk: VoiceDesk, request: Any = None) -> ProfileStore:
    """The profiles this UI user may see (all with the login off; ``app.ui.owners``)."""
    return desk.voices.profiles(ui_visibility(desk.state, request))


def voice_choices(desk: VoiceDesk, request: Any = None) -> list[tuple[str, str]]:
    """Built-in voices (with engine, language, gender) then this user's profiles."""
    choices: list[tuple[str, str]] = []
    for engine in desk.voices.engines():
        for v in engine["voices"]:
            choices.append((f"{v['name']} · {v['language']} · {label('gender.', v['gender'])}",
                            v["id"]))
    for profile in ui_profiles(desk, request).list():
        choices.append((f"★ {profile.name} ({profile.language}, {t('voice.matching')})",
                        PROFILE_PREFIX + profile.id))
    return choices


def profile_rows(desk: VoiceDesk, request: Any = None) -> list[list[Any]]:
    """``/list_profiles``: one row per profile, its id first (for scripts)."""
    rows = []
    for p in ui_profiles(desk, request).list():
        stats = p.sample_stats
        rows.append([p.id, p.name, p.language, stats.get("count"),
                     stats.get("total_seconds"), p.matching.source_voice if p.matching else None,
                     p.created_at])
    return rows


def speaks_from(profile: Profile) -> str | None:
    """The built-in voice a profile's speech starts from in its own language: the one its
    serving measure chose, or (a profile made before that record) the voice its matching
    was calibrated on."""
    serves = ((profile.serving or {}).get(profile.language) or {}).get("serves") or {}
    voice = serves.get("voice") or (profile.matching.source_voice if profile.matching else None)
    return str(voice) if voice else None


def shown_rows(desk: VoiceDesk, request: Any = None) -> list[list[Any]]:
    """The profiles as people see them: the voice each speaks from by its name, a local
    date."""
    lang = request_language(request)
    rows = []
    for p in ui_profiles(desk, request).list():
        voice = speaks_from(p)
        rows.append([p.name, p.language, p.sample_stats.get("count"),
                     p.sample_stats.get("total_seconds"),
                     voice_label(desk, voice, lang) if voice else "",
                     shown_time(p.created_at, lang)])
    return rows


def delete_choices(desk: VoiceDesk, request: Any = None) -> list[tuple[str, str]]:
    """(name and date, id): people pick a name, ``/delete_profile`` gets the id."""
    lang = request_language(request)
    return [(f"{p.name} · {shown_time(p.created_at, lang)}", p.id)
            for p in ui_profiles(desk, request).list()]


def built_in_voices(desk: VoiceDesk) -> list[dict[str, Any]]:
    """Every built-in voice of the available speech engines (``id``, ``name``, ``language``)."""
    return desk.voices.built_in_voices()


def voice_label(desk: VoiceDesk, voice: str | None, lang: str = "en") -> str:
    """A built-in voice (or a blend of two) by its people's name: "Kumo (Kokoro)", "a mix
    of Kumo (Kokoro) 51 % + Gongitsune (Kokoro) 49 %"; a voice with another's way of
    speaking ("timbre/prosody"): "Kumo (Kokoro), speaking with the pitch and rhythm of a mix
    of ..."."""
    from models.base import StyleSpace

    names = {v["id"]: v["name"] for v in built_in_voices(desk)}
    if not voice:
        return ""
    if voice in names:
        return str(names[voice])
    for engine in desk.voices.tts():
        if isinstance(engine, StyleSpace):
            try:
                engine.parse_blend(voice)
            except StudioError:
                continue
            timbre, _, prosody = voice.partition("/")
            if prosody:
                return plain("voice.prosody", lang).format(
                    timbre=voice_label(desk, timbre, lang),
                    prosody=voice_label(desk, prosody, lang))
            mixed = " + ".join(f"{names.get(v, v)} {round(w * 100)} %"
                               for v, w in engine.parse_blend(voice))
            return plain("voice.mix", lang).format(parts=mixed)
    return voice


def default_voice(desk: VoiceDesk, language: str) -> str | None:
    """The first built-in voice that speaks ``language`` (else the first voice at all: a
    studio configured with Japanese voices only still has a default)."""
    voices = built_in_voices(desk)
    return next((v["id"] for v in voices if v["language"] == language),
                voices[0]["id"] if voices else None)


def fitted_voice(desk: VoiceDesk, voice: str | None, language: str) -> str | None:
    """``voice`` when it can speak ``language`` (a profile speaks both); else the first
    built-in voice that does (so "en" with a Japanese voice never ends in an error)."""
    spoken = {v["id"]: v["language"] for v in built_in_voices(desk)}
    if voice and (voice.startswith(PROFILE_PREFIX) or spoken.get(voice) in (None, language)):
        return voice
    return default_voice(desk, language) or voice


def spoken_language(desk: VoiceDesk, voice: str | None, language: str) -> str:
    """The language a built-in voice speaks (the choice as it is for a profile)."""
    spoken = {v["id"]: v["language"] for v in built_in_voices(desk)}
    found = spoken.get(voice or "")
    return found if found in ("ja", "en") else language


def engine_note(report: dict[str, Any], lang: str = "en", chosen: Chosen | None = None,
                voice_name: Callable[[str], str] = str) -> str:
    """Which engine spoke and whose voice it is, in people's words; a note only when an
    engine worth telling of was passed over (``app.ui.fallback``). The engines' own
    diagnostics stay in the Engines panel and ``/health``."""
    lines = [f"**{plain('voice.engine', lang)}:** {engine_name('tts', report['backend'], lang)}"]
    if report.get("method") == "evolved_voice":  # a profile's evolved built-in voice
        lines.append(f"**{plain('voice.matched', lang)}:** "
                     f"{report['label_ja' if lang == 'ja' else 'label']}")
    conversion = report.get("conversion")
    notes = [fallback_note("tts", report["backend"], report.get("attempts", []), chosen or {},
                           lang)]
    if conversion:
        key = f"conversion.{conversion['backend']}"
        label = plain(key, lang)
        lines.append(f"**{plain('voice.matched', lang)}:** "
                     f"{conversion['label'] if label == key else label}")
        notes.append(fallback_note("voice_converter", conversion["backend"],
                                   conversion.get("attempts", []), chosen or {}, lang))
    measured = spoken_line(report, lang, voice_name)  # a profile's voice, by three measures
    if measured:
        lines.append(measured)
    lines += [f"⚠ {note}" for note in notes if note]
    return "\n\n".join(lines)


def build(desk: VoiceDesk) -> None:
    """The tab over its parts (:class:`VoiceDesk`), never the whole app."""
    def empty_clips(request: gr.Request | None = None) -> dict[str, Any]:
        return headed(CLIP_COLUMNS, [], request_language(request))

    def initial_rows(request: gr.Request | None = None) -> dict[str, Any]:
        return headed(SHOWN_COLUMNS, shown_rows(desk, request), request_language(request))

    chosen = operator_choices(desk.state.settings)  # whose skips people hear of
    gr.Markdown(t("voice.intro"))
    with gr.Row():
        with gr.Column(scale=3):
            # English until the page's load event says which language the page speaks (or
            # the first voice's language, where no voice speaks English)
            first = default_voice(desk, "en")
            spoken = spoken_language(desk, first, "en")
            text = gr.Textbox(label=t("voice.text"), lines=4, max_length=1000,
                              value=plain("voice.sample", spoken), elem_id="voice-text")
            with gr.Row(elem_id="voice-voice-row"):
                voice = gr.Dropdown(label=t("voice.voice"), choices=voice_choices(desk),
                                    value=first,
                                    allow_custom_value=True, elem_id="voice-voice",
                                    min_width=200)
                language = gr.Radio(["ja", "en"], value=spoken,
                                    label=t("voice.language"),
                                    elem_id="voice-language", min_width=120)
            with gr.Row():
                speed = gr.Slider(0.5, 2.0, 1.0, step=0.05, label=t("voice.speed"))
                pitch = gr.Slider(-12, 12, 0, step=0.5, label=t("voice.pitch"))
                intonation = gr.Slider(0, 2, 1.0, step=0.05, label=t("voice.intonation"))
            with gr.Row():
                volume = gr.Slider(0, 2, 1.0, step=0.05, label=t("voice.volume"))
                pause = gr.Slider(0, 3, 1.0, step=0.1, label=t("voice.pause"))
            speak = gr.Button(t("voice.speak"), variant="primary", elem_id="voice-speak")
        with gr.Column(scale=2):
            audio = gr.Audio(label=t("voice.audio"), type="numpy", interactive=False,
                             elem_id="voice-audio")
            info = gr.Markdown(elem_id="voice-engine", elem_classes=["studio-note"])

    def synthesize(text: str, voice: str | None, language: str, speed: float, pitch: float,
                   intonation: float, volume: float, pause: float,
                   request: gr.Request | None = None,
                   progress: gr.Progress = gr.Progress()) -> tuple[Any, str]:
        lang = request_language(request)
        try:
            with desk.record("voice.synthesize", {"voice": voice, "language": language,
                                                  "chars": len(text or "")}, request):
                choice = voices.choice_of((voice or "").removeprefix(PROFILE_PREFIX))
                speech, report = desk.voices.speak(
                    text, choice, language=language,
                    options={"speed": float(speed), "pitch": float(pitch),
                             "intonation": float(intonation), "volume": float(volume),
                             "pause": float(pause)},
                    progress=lambda f, step: progress(f, desc=step_text(step, lang)),
                    profiles=ui_profiles(desk, request))
        except StudioError as exc:
            raise _error(exc, request) from None
        engine = report.engine
        # kept an hour (temp/): the other tabs' "use latest" offer it to this user
        key = voices.keep_for_an_hour(desk.voices.storage, speech, engine)
        remember(desk.state, request, key)
        pcm = (np.clip(speech.audio.samples, -1, 1) * 32767).astype(np.int16)
        return (speech.audio.sample_rate, pcm), engine_note(
            report.as_dict(), lang, chosen, lambda v: voice_label(desk, v, lang))

    # progress and the error badge on the player only: on the engine line a badge covers it
    speak.click(synthesize, [text, voice, language, speed, pitch, intonation, volume, pause],
                [audio, info], api_name="synthesize", concurrency_limit=2,
                show_progress_on=[audio])

    with gr.Accordion(t("voice.profiles"), open=False, elem_id="voice-profiles"):
        with gr.Row():
            with gr.Column():
                name = gr.Textbox(label=t("voice.name"), max_length=80,
                                  elem_id="voice-profile-name")
                profile_language = gr.Radio(["ja", "en"], value="en", label=t("voice.language"),
                                            elem_id="voice-profile-language")
                files = gr.File(label=t("voice.upload"), file_count="multiple",
                                file_types=["audio"], type="filepath",
                                elem_id="voice-profile-files")
                mic = gr.Audio(label=t("voice.mic"), sources=["microphone"], type="filepath")
                with gr.Row():
                    check = gr.Button(t("voice.check"))
                    create = gr.Button(t("voice.create"), variant="primary",
                                       elem_id="voice-profile-create")
            with gr.Column():
                clip_table = gr.Dataframe(headers=CLIP_HEADERS, label=t("voice.clip_table"),
                                          value=empty_clips, interactive=False, wrap=True)
                result = gr.Markdown(elem_id="voice-profile-result",
                                     elem_classes=["studio-note"])
        profiles = gr.Dataframe(headers=SHOWN_HEADERS, label=t("voice.list"),
                                value=initial_rows, interactive=False, wrap=True,
                                elem_id="voice-profile-list")
        with gr.Row():
            refresh = gr.Button(t("voice.refresh"), size="sm")
            delete_id = gr.Dropdown(label=t("voice.delete_id"),
                                    choices=delete_choices(desk),
                                    allow_custom_value=True, elem_id="voice-profile-delete")
            delete = gr.Button(t("voice.delete"), variant="stop", size="sm")

    def check_clips(files: Any, mic: Any, request: gr.Request | None = None) -> dict[str, Any]:
        lang = request_language(request)
        reports = voices.check_clips([(Path(p).read_bytes(), Path(p).name)
                                      for p in clip_paths(files, mic)])
        return headed(CLIP_COLUMNS, clip_rows(reports, lang), lang)

    def refreshed(request: gr.Request | None = None) -> tuple[Any, Any, Any]:
        return (headed(SHOWN_COLUMNS, shown_rows(desk, request), request_language(request)),
                gr.update(choices=voice_choices(desk, request)),
                gr.update(choices=delete_choices(desk, request), value=None))

    def opened(request: gr.Request | None = None) -> tuple[Any, ...]:
        """A page opens (or reloads): this user's profiles in every list, and the sample
        text, language and voice of the page's language."""
        lang = request_language(request)
        table, voices, deletable = refreshed(request)
        voice = default_voice(desk, lang)
        spoken = spoken_language(desk, voice, lang)
        return (plain("voice.sample", spoken), spoken,
                gr.update(choices=voices["choices"], value=voice), lang, table, deletable)

    def language_chosen(voice: str | None, language: str) -> str | None:
        return fitted_voice(desk, voice, language)

    def voice_chosen(voice: str | None, language: str) -> str:
        return spoken_language(desk, voice, language)

    def create_profile(name: str, language: str, files: Any, mic: Any,
                       request: gr.Request | None = None,
                       progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        """Queue the ``voice.profile`` job like ``POST /api/voice/profiles`` and wait for it,
        showing its current step; the profile (or the clips' verdicts) when it is done."""
        paths = clip_paths(files, mic)
        clips = [(Path(p).read_bytes(), Path(p).name) for p in paths]
        lang = request_language(request)
        try:
            answer = desk.voices.submit_profile(clips, name=name, language=language,
                                                owner=ui_owner(desk.state, request))
            job = wait_for_profile(desk.jobs, answer["task_id"], progress, lang)
        except StudioError as exc:
            table = clip_rows(exc.details.get("clips") or [], lang)
            return (headed(CLIP_COLUMNS, table, lang),
                    f"❌ {exc.localized(lang)} ({exc.code})", *refreshed(request))
        profile = job.result["profile"]
        summary = profile_summary(profile, lang, job.result.get("processing_time"),
                                  lambda voice: voice_label(desk, voice, lang))
        served = serving_summary(profile, lang,
                                 lambda voice: voice_label(desk, voice, lang))
        summary += f"\n\n{served}" if served else ""
        table = clip_rows(profile["sample_stats"]["clips"], lang)
        return (headed(CLIP_COLUMNS, table, lang), summary, *refreshed(request))

    def list_profiles(request: gr.Request | None = None) -> list[list[Any]]:
        return profile_rows(desk, request)

    def delete_profile(profile_id: str, request: gr.Request | None = None) -> tuple[Any, ...]:
        try:
            ui_profiles(desk, request).delete((profile_id or "").strip())
        except StudioError as exc:
            raise _error(exc, request) from None
        return ("🗑", *refreshed(request))

    check.click(check_clips, [files, mic], clip_table, api_visibility="private")
    # one progress bar, on the result (it showed on each of the five outputs)
    create.click(create_profile, [name, profile_language, files, mic],
                 [clip_table, result, profiles, voice, delete_id], api_name="create_profile",
                 concurrency_limit=1, show_progress_on=[result])
    refresh.click(refreshed, None, [profiles, voice, delete_id], api_visibility="private")
    language.input(language_chosen, [voice, language], voice, api_visibility="private",
                   queue=False, show_progress="hidden")
    voice.input(voice_chosen, [voice, language], language, api_visibility="private",
                queue=False, show_progress="hidden")
    list_button = gr.Button(visible=False)
    api_rows = gr.Dataframe(headers=PROFILE_HEADERS, visible=False)  # ids, for scripts
    list_button.click(list_profiles, None, api_rows, api_name="list_profiles")
    delete.click(delete_profile, delete_id, [result, profiles, voice, delete_id],
                 api_name="delete_profile")
    evolve_panel.build(desk)  # the evolved voice: search, progress, before/after
    blocks = get_blocks_context()
    if blocks is not None:  # a page (re)load shows this user's profiles in its language
        blocks.root_block.load(opened, None, [text, language, voice, profile_language,
                                              profiles, delete_id], api_visibility="private")
