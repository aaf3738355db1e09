"""The Voice tab: speak text in a built-in voice or a profile; make and manage profiles.

Gradio API names (for ``gradio_client``): ``/synthesize``, ``/create_profile``,
``/list_profiles``, ``/delete_profile``. Speaking in a profile's voice by DSP is called
"voice matching" here, never cloning.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from app.i18n import step_text
from app.services import Services
from app.storage import new_key
from app.ui import voice_evolve as evolve_panel
from app.ui.owners import remember, ui_owner, ui_visibility
from app.ui.text import label, plain, register, request_language, studio_error, t
from app.ui.text import table as headed
from app.ui.voice_serving import serving_summary, spoken_line
from app.ui.work import recorded
from app.usecases.voices import submit_profile, voice_kit
from models.errors import StudioError
from pipelines.media import encode_wav
from pipelines.speech import VoiceChoice, list_voices
from pipelines.voice_clips import check_clip
from pipelines.voice_options import VoiceOptions
from pipelines.voice_profiles import ProfileStore
from pipelines.voice_ref import VoiceRef

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
        "voice.matched": "Voice", "voice.fallback": "fallback", "voice.matching": "voice matching",
        "voice.matching_from": "Voice matching from", "voice.similarity": "similarity",
        "voice.not_cloning": "DSP voice matching, not cloning",
        "conversion.frame_matching":
            "voice matching: rebuilt from your recordings' frames (WORLD vocoder), not cloning",
        "conversion.voice_matching": "voice matching: pitch and formants (Praat), not cloning",
        "outcome.used": "used", "outcome.skipped": "skipped", "outcome.failed": "failed",
        "outcome.unavailable": "unavailable",
        "col.id": "id", "col.name": "name", "col.language": "language", "col.clips": "clips",
        "col.seconds": "seconds", "col.matching_from": "voice matching from",
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
        "voice.matched": "声", "voice.fallback": "代替", "voice.matching": "声合わせ",
        "voice.matching_from": "声合わせの元", "voice.similarity": "類似度",
        "voice.not_cloning": "DSP による声合わせ（クローンではありません）",
        "conversion.frame_matching":
            "声合わせ：録音のフレームから再合成（WORLD ボコーダ）。クローンではありません",
        "conversion.voice_matching": "声合わせ：ピッチとフォルマント（Praat）。クローンではありません",
        "outcome.used": "使用", "outcome.skipped": "スキップ", "outcome.failed": "失敗",
        "outcome.unavailable": "利用不可",
        "col.id": "ID", "col.name": "名前", "col.language": "言語", "col.clips": "録音数",
        "col.seconds": "秒", "col.matching_from": "声合わせの元",
        "col.created": "作成日時", "col.clip": "録音", "col.verdict": "判定",
        "col.speech_s": "発話 秒", "col.snr": "SNR dB", "col.note": "メモ",
    },
)

PROFILE_PREFIX = "profile:"
"""Marks a profile among the dropdown's choices (the value is this plus the profile id)."""
# What the progress bar says during each step of pipelines.voice_create.PROFILE_STEPS.
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
CLIP_HEADERS = [plain(k) for k in CLIP_COLUMNS]
PROFILE_HEADERS = [plain(k) for k in PROFILE_COLUMNS]


def _error(exc: StudioError, request: Any = None) -> gr.Error:
    return studio_error(exc, request_language(request))


def _outcome(value: str, lang: str) -> str:
    key = f"outcome.{value}"
    return plain(key, lang) if plain(key, lang) != key else value


def ui_profiles(services: Services, request: Any = None) -> ProfileStore:
    """The profiles this UI user may see (all with the login off; ``app.ui.owners``)."""
    return voice_kit(services).store.scoped(ui_visibility(services, request))


def voice_choices(services: Services, request: Any = None) -> list[tuple[str, str]]:
    """Built-in voices (with engine, language, gender) then this user's profiles."""
    kit = voice_kit(services)
    choices: list[tuple[str, str]] = []
    for engine in list_voices(kit.tts):
        for v in engine["voices"]:
            choices.append((f"{v['name']} · {v['language']} · {label('gender.', v['gender'])}",
                            v["id"]))
    for profile in ui_profiles(services, request).list():
        choices.append((f"★ {profile.name} ({profile.language}, {t('voice.matching')})",
                        PROFILE_PREFIX + profile.id))
    return choices


def profile_rows(services: Services, request: Any = None) -> list[list[Any]]:
    rows = []
    for p in ui_profiles(services, request).list():
        stats = p.sample_stats
        rows.append([p.id, p.name, p.language, stats.get("count"),
                     stats.get("total_seconds"), p.matching.source_voice if p.matching else None,
                     p.created_at])
    return rows


def engine_note(report: dict[str, Any], lang: str = "en") -> str:
    fallback = plain("voice.fallback", lang)
    lines = [f"**{plain('voice.engine', lang)}:** `{report['backend']}`"
             + (f" ({fallback}: `{report['fallback_method']}`)" if report["fallback_used"]
                else "")]
    if report.get("method") == "evolved_voice":  # a profile's evolved built-in voice
        lines.append(f"**{plain('voice.matched', lang)}:** "
                     f"{report['label_ja' if lang == 'ja' else 'label']}")
    conversion = report.get("conversion")
    if conversion:
        key = f"conversion.{conversion['backend']}"
        label = plain(key, lang)
        lines.append(f"**{plain('voice.matched', lang)}:** "
                     f"{conversion['label'] if label == key else label} "
                     f"(`{conversion['backend']}`)")
    measured = spoken_line(report, lang)  # a profile's voice, chosen on three measures
    if measured:
        lines.append(measured)
    skipped = [a for a in report.get("attempts", []) if a["outcome"] != "used"]
    for attempt in skipped:
        lines.append(f"- `{attempt['backend']}` {_outcome(attempt['outcome'], lang)}: "
                     f"{_diagnostic(attempt['reason'])}")
    if report.get("conversion"):
        for attempt in report["conversion"].get("attempts", []):
            if attempt["outcome"] != "used":
                lines.append(f"- `{attempt['backend']}` {_outcome(attempt['outcome'], lang)}: "
                             f"{_diagnostic(attempt['reason'])}")
    return "\n".join(lines)


def _diagnostic(reason: str) -> str:
    """An engine's own words, shown as they are: a code span whose double backticks keep
    the reason's own backticks and underscores from turning into Markdown."""
    return f"`` {reason} ``" if reason else ""


def _paths(files: Any, mic: Any) -> list[str]:
    out = []
    for item in (files or []):
        out.append(item if isinstance(item, str) else getattr(item, "name", str(item)))
    if mic:
        out.append(mic if isinstance(mic, str) else getattr(mic, "name", str(mic)))
    return out


def _clip_rows(reports: list[Any]) -> list[list[Any]]:
    return [[r.filename, r.verdict, round(r.duration, 1), round(r.speech_seconds, 1),
             round(max(r.snr_db, r.snr_after_db or 0), 1),
             r.message or ", ".join(r.warnings)] for r in reports]


def wait_for_profile(services: Services, job_id: str, progress: Any, lang: str,
                     poll_s: float = 0.25) -> Any:
    """Follow a ``voice.profile`` job until it ends, passing its progress and step on to the
    page (or to ``gradio_client``'s ``job.status()``). A failure comes back as the
    StudioError the job recorded (with the clips' verdicts in its details)."""
    progress(0.0, desc=plain("voice.step.queued", lang))
    while True:
        job = services.jobs.get(job_id)
        if job.status == "completed":
            progress(1.0, desc=plain("voice.step.save", lang))
            return job
        if job.status in ("failed", "cancelled"):
            error = job.error or {"code": "QUEUE_JOB_CANCELLED", "message": "cancelled"}
            raise StudioError(error.get("message") or "", code=error.get("code"),
                              message_ja=error.get("message_ja"),
                              details=error.get("details") or {})
        step = job.current_step if job.status == "processing" else "queued"
        progress(job.progress / 100.0, desc=plain(f"voice.step.{step or 'queued'}", lang))
        time.sleep(poll_s)


def build(services: Services) -> None:
    def empty_clips(request: gr.Request | None = None) -> dict[str, Any]:
        return headed(CLIP_COLUMNS, [], request_language(request))

    def initial_rows(request: gr.Request | None = None) -> dict[str, Any]:
        return headed(PROFILE_COLUMNS, profile_rows(services, request),
                     request_language(request))

    gr.Markdown(t("voice.intro"))
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label=t("voice.text"), lines=4, max_length=1000,
                              value="こんにちは。今日は2024年3月5日、いい天気ですね！",
                              elem_id="voice-text")
            with gr.Row():
                choices = voice_choices(services)
                voice = gr.Dropdown(label=t("voice.voice"), choices=choices,
                                    value=choices[0][1] if choices else None,
                                    allow_custom_value=True, elem_id="voice-voice")
                language = gr.Radio(["ja", "en"], value="ja", label=t("voice.language"),
                                    elem_id="voice-language")
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
        kit = voice_kit(services)
        lang = request_language(request)
        try:
            with recorded(services, "voice.synthesize", {"voice": voice, "language": language,
                                                         "chars": len(text or "")}, request):
                choice = VoiceChoice.of(VoiceRef.parse((voice or "").removeprefix(
                    PROFILE_PREFIX)))
                speech, report = kit.synthesize(
                    text, choice=choice, language=language,
                    options=VoiceOptions(speed=float(speed), pitch=float(pitch),
                                         intonation=float(intonation), volume=float(volume),
                                         pause=float(pause)),
                    progress=lambda f, step: progress(f, desc=step_text(step, lang)),
                    profiles=ui_profiles(services, request))
        except StudioError as exc:
            raise _error(exc, request) from None
        engine = report.engine
        # kept an hour (temp/): the other tabs' "use latest" offer it to this user
        key = services.storage.put(new_key(f"temp/voices/{engine}", "wav"),
                                   encode_wav(speech.audio))
        remember(services, request, key)
        pcm = (np.clip(speech.audio.samples, -1, 1) * 32767).astype(np.int16)
        return (speech.audio.sample_rate, pcm), engine_note(report.as_dict(), lang)

    # progress and the error badge on the player only: on the engine line a badge covers it
    speak.click(synthesize, [text, voice, language, speed, pitch, intonation, volume, pause],
                [audio, info], api_name="synthesize", concurrency_limit=2,
                show_progress_on=[audio])

    with gr.Accordion(t("voice.profiles"), open=False, elem_id="voice-profiles"):
        with gr.Row():
            with gr.Column():
                name = gr.Textbox(label=t("voice.name"), max_length=80,
                                  elem_id="voice-profile-name")
                profile_language = gr.Radio(["ja", "en"], value="ja", label=t("voice.language"))
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
                result = gr.Markdown(elem_id="voice-profile-result")
        profiles = gr.Dataframe(headers=PROFILE_HEADERS, label=t("voice.list"),
                                value=initial_rows, interactive=False,
                                wrap=True)
        with gr.Row():
            refresh = gr.Button(t("voice.refresh"), size="sm")
            delete_id = gr.Dropdown(label=t("voice.delete_id"),
                                    choices=[row[0] for row in profile_rows(services)],
                                    allow_custom_value=True)
            delete = gr.Button(t("voice.delete"), variant="stop", size="sm")

    def check_clips(files: Any, mic: Any, request: gr.Request | None = None) -> dict[str, Any]:
        reports = [check_clip(Path(p).read_bytes(), Path(p).name, i)[1]
                   for i, p in enumerate(_paths(files, mic))]
        return headed(CLIP_COLUMNS, _clip_rows(reports), request_language(request))

    def refreshed(request: gr.Request | None = None) -> tuple[Any, Any, Any]:
        rows = profile_rows(services, request)
        return (headed(PROFILE_COLUMNS, rows, request_language(request)),
                gr.update(choices=voice_choices(services, request)),
                gr.update(choices=[row[0] for row in rows], value=None))

    def create_profile(name: str, language: str, files: Any, mic: Any,
                       request: gr.Request | None = None,
                       progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        """Queue the ``voice.profile`` job like ``POST /api/voice/profiles`` and wait for it,
        showing its current step; the profile (or the clips' verdicts) when it is done."""
        paths = _paths(files, mic)
        clips = [(Path(p).read_bytes(), Path(p).name) for p in paths]
        lang = request_language(request)
        try:
            answer = submit_profile(services, clips, name=name, language=language,
                                    owner=ui_owner(services, request))
            job = wait_for_profile(services, answer["task_id"], progress, lang)
        except StudioError as exc:
            rows = exc.details.get("clips")
            table = [[c["filename"], c["verdict"], c["duration"], c["speech_seconds"],
                      round(max(c["snr_db"], c["snr_after_db"] or 0), 1),
                      c["message"] or ", ".join(c["warnings"])] for c in rows] if rows else []
            return (headed(CLIP_COLUMNS, table, lang),
                    f"❌ {exc.localized(lang)} ({exc.code})", *refreshed(request))
        profile = job.result["profile"]
        matching = profile.get("matching") or {}
        similarity = matching.get("similarity") or {}
        seconds = job.result.get("processing_time")
        done_in = f" ({seconds:.1f} s)" if isinstance(seconds, int | float) else ""
        summary = (f"✅ `{profile['id']}` — {profile['name']}{done_in}\n\n"
                   f"{plain('voice.matching_from', lang)} `{matching.get('source_voice')}`: "
                   f"{plain('voice.similarity', lang)} "
                   f"{similarity.get('source')} → {similarity.get('matched')}"
                   + (f" → {similarity['served']} (`{similarity.get('served_by')}`)"
                      if similarity.get("served") is not None
                      and similarity.get("serves", similarity.get("served_by"))
                      == similarity.get("served_by") else "")
                   + f" ({plain('voice.not_cloning', lang)})") if matching else \
            f"✅ `{profile['id']}` — {profile['name']}{done_in}"
        served = serving_summary(profile, lang)
        summary += f"\n\n{served}" if served else ""
        stats = profile["sample_stats"]["clips"]
        table = [[c["filename"], c["verdict"], c["duration"], c["speech_seconds"],
                  round(max(c["snr_db"], c["snr_after_db"] or 0), 1),
                  ", ".join(c["warnings"])] for c in stats]
        return (headed(CLIP_COLUMNS, table, lang), summary, *refreshed(request))

    def list_profiles(request: gr.Request | None = None) -> list[list[Any]]:
        return profile_rows(services, request)

    def delete_profile(profile_id: str, request: gr.Request | None = None) -> tuple[Any, ...]:
        try:
            ui_profiles(services, request).delete((profile_id or "").strip())
        except StudioError as exc:
            raise _error(exc, request) from None
        return (f"🗑 {profile_id}", *refreshed(request))

    check.click(check_clips, [files, mic], clip_table, api_visibility="private")
    create.click(create_profile, [name, profile_language, files, mic],
                 [clip_table, result, profiles, voice, delete_id], api_name="create_profile",
                 concurrency_limit=1)
    refresh.click(refreshed, None, [profiles, voice, delete_id], api_visibility="private")
    list_button = gr.Button(visible=False)
    list_button.click(list_profiles, None, profiles, api_name="list_profiles")
    delete.click(delete_profile, delete_id, [result, profiles, voice, delete_id],
                 api_name="delete_profile")
    evolve_panel.build(services)  # the evolved voice: search, progress, before/after
