"""The Message tab: what a person comes for. Photo + words -> finished video, through the
same queued job as ``POST /api/video/generate`` (so it shows up in the history, survives a
page reload, and can be cancelled). Gradio API: ``/generate_message``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.context import get_blocks_context

from app.api.message import delete_message, submit_message
from app.services import Services
from app.ui.owners import ui_owner, ui_visibility
from app.ui.text import plain, register, request_language, t
from models.errors import StudioError
from pipelines.message import KIND, SIZES

MAX_CHARS = 1000
STEP_NAMES = {
    "en": {"image": "cutting out the photo", "voice": "speaking the words",
           "prosody": "tuning the voice", "bgm": "mixing the music",
           "video": "animating the face", "subtitles": "adding subtitles", "done": "done"},
    "ja": {"image": "写真を切り抜き中", "voice": "音声を合成中", "prosody": "抑揚を調整中",
           "bgm": "BGM をミックス中", "video": "顔を動かしています", "subtitles": "字幕を追加中", "done": "完成"},
}

register(
    en={
        "message.photo": "Photo (upload or webcam)", "message.text": "Message",
        "message.placeholder": "e.g. お誕生日おめでとう！素敵な一年になりますように。",
        "message.voice": "Voice (built-in or your profile)", "message.emotion": "Mood",
        "message.bgm": "Music", "message.size": "Size", "message.subtitles": "Subtitles",
        "message.generate": "Generate video message", "message.cancel": "Cancel",
        "message.result": "Your message", "message.details": "How it was made",
        "message.history": "Past messages", "message.refresh": "Refresh history",
        "message.delete": "Delete selected", "message.selected": "Selected message",
        "message.chars": "characters", "message.cancelled": "Cancelled.",
        "message.none_selected": "Select a message in the gallery first.",
        "message.size_square": "Square 512×512", "message.size_portrait": "Portrait 9:16 (720×1280)",
        "message.size_landscape": "Landscape 16:9 (1280×720)",
        "message.no_photo": "Add a photo first.", "message.waiting": "waiting for a worker",
        "message.count0": "0 / 1000 characters",
    },
    ja={
        "message.photo": "写真（アップロードまたはカメラ）", "message.text": "メッセージ",
        "message.placeholder": "例：お誕生日おめでとう！素敵な一年になりますように。",
        "message.voice": "声（内蔵ボイスまたはプロファイル）", "message.emotion": "雰囲気",
        "message.bgm": "音楽", "message.size": "サイズ", "message.subtitles": "字幕",
        "message.generate": "ビデオメッセージを作成", "message.cancel": "キャンセル",
        "message.result": "できあがったメッセージ", "message.details": "生成の詳細",
        "message.history": "これまでのメッセージ", "message.refresh": "履歴を更新",
        "message.delete": "選択したものを削除", "message.selected": "選択中のメッセージ",
        "message.chars": "文字", "message.cancelled": "キャンセルしました。",
        "message.none_selected": "先にギャラリーでメッセージを選んでください。",
        "message.size_square": "正方形 512×512", "message.size_portrait": "縦 9:16（720×1280）",
        "message.size_landscape": "横 16:9（1280×720）",
        "message.no_photo": "先に写真を追加してください。", "message.waiting": "ワーカーを待っています",
        "message.count0": "0 / 1000 文字",
    },
)


def voice_choices(services: Services, request: Any = None) -> list[tuple[str, str]]:
    """Built-in voices of the available engines, then the caller's voice profiles."""
    from app.api.voice import voice_kit
    from pipelines.voice import list_voices

    kit = voice_kit(services)
    choices: list[tuple[str, str]] = [("auto", "")]
    for engine in list_voices(kit.tts):
        for v in engine["voices"]:
            choices.append((f"{v['name']} · {v['language']} · {v['gender']} ({engine['engine']})",
                            v["id"]))
    for profile in kit.store.scoped(ui_visibility(services, request)).list():
        choices.append((f"★ {profile.get('name')} (profile)", profile["id"]))
    return choices


def bgm_choices(services: Services, request: Any = None) -> list[tuple[str, str]]:
    from pipelines.bgm import list_tracks

    tracks = list_tracks(services.storage, visible=ui_visibility(services, request))
    return [("none", "none"), *[(f"{tr.title} · {tr.mood}", tr.id) for tr in tracks]]


def emotion_choices() -> list[str]:
    from pipelines.prosody import EMOTION_PRESETS

    return ["auto", *EMOTION_PRESETS]




class MessageTab:
    """State shared by the tab's events: the job each browser session is waiting on, and
    the one it made last (so "how it was made" shows this session's message, not another's)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.running: dict[str, str] = {}
        self.finished: dict[str, str] = {}

    def generate(self, image: str | None, text: str, voice: str = "", emotion: str = "auto",
                 bgm: str = "celebration", size: str = "512x512", subtitles: bool = False,
                 request: gr.Request | None = None,
                 progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008 - Gradio's idiom
        """Photo + text -> MP4 path (also the ``/generate_message`` API).

        The job runs on the studio's queue like a REST submission; this call waits for it,
        passing the job's weighted progress and current stage on to the page (or to
        ``gradio_client``'s ``job.status()``)."""
        lang = request_language(request)
        if not image:
            raise gr.Error(plain("message.no_photo", lang))
        try:
            answer = submit_message(
                self.services, Path(image).read_bytes(),
                {"text": text, "voice": voice or None, "emotion": emotion, "bgm": bgm,
                 "size": size, "subtitles": subtitles}, ui_owner(self.services, request))
        except StudioError as exc:
            raise gr.Error(f"{exc.localized(lang)} ({exc.code})") from None
        job_id = answer["task_id"]
        session = getattr(request, "session_hash", None) or job_id
        self.running[session] = job_id
        try:
            path = self._wait(job_id, lang, progress)
        finally:
            self.running.pop(session, None)
        self.finished[session] = job_id
        while len(self.finished) > 1000:  # forget the oldest sessions
            self.finished.pop(next(iter(self.finished)))
        return path

    def _wait(self, job_id: str, lang: str, progress: gr.Progress) -> str:
        names = STEP_NAMES.get(lang, STEP_NAMES["en"])
        desc = plain("message.waiting", lang)
        progress(0.0, desc=desc)
        while True:
            try:
                job = self.services.jobs.get(job_id)
            except StudioError as exc:  # deleted while we waited
                raise gr.Error(f"{exc.localized(lang)} ({exc.code})") from None
            if job.status == "completed":
                progress(1.0, desc=names.get("done", "done"))
                return str(self.services.storage.local_path(job.result["video_key"]))
            if job.status == "cancelled":
                raise gr.Error(plain("message.cancelled", lang))
            if job.status == "failed":
                error = job.error or {}
                message = error.get("message_ja") if lang == "ja" else None
                raise gr.Error(f"{message or error.get('message')} ({error.get('code')})")
            desc = step_description(job.current_step, job.status, names, lang) or desc
            progress(job.progress / 100.0, desc=desc)
            time.sleep(0.5)

    def cancel(self, request: gr.Request | None = None) -> str:
        session = getattr(request, "session_hash", None)
        job_id = self.running.get(session or "")
        if job_id:
            try:
                self.services.queue.cancel(job_id)
            except StudioError:
                pass
        return plain("message.cancelled", request_language(request))

    def last_details(self, request: gr.Request | None = None) -> str:
        """How this session's last message was made (engines, mood, time)."""
        job_id = self.finished.get(getattr(request, "session_hash", None) or "")
        if not job_id:
            return ""
        try:
            job = self.services.jobs.get(job_id)
        except StudioError:
            return ""
        return describe(job.result or {}) if job.status == "completed" else ""

    def history(self, request: gr.Request | None = None) -> list[tuple[str, str]]:
        items = []
        owner = ui_owner(self.services, request)
        for job in self.services.jobs.list(kind=KIND, owner=owner, limit=60):
            result = job.result or {}
            if job.status != "completed" or not result.get("portrait_key"):
                continue
            try:
                thumb = self.services.storage.local_path(result["portrait_key"])
            except StudioError:
                continue
            caption = (job.params.get("text") or "")[:40]
            items.append((str(thumb), f"{caption}\n#{job.id}"))
        return items

    def pick(self, evt: gr.SelectData, request: gr.Request | None = None
             ) -> tuple[str | None, str, str]:
        caption = str(evt.value.get("caption") if isinstance(evt.value, dict) else evt.value)
        job_id = caption.rsplit("#", 1)[-1].strip()
        try:
            job = self.services.jobs.get(job_id)
            video = self.services.storage.local_path(job.result["video_key"])
        except (StudioError, KeyError, TypeError):
            return None, "", ""
        return str(video), job_id, describe(job.result or {})

    def delete(self, job_id: str, request: gr.Request | None = None
               ) -> tuple[list[tuple[str, str]], None, str, str]:
        if not job_id:
            raise gr.Error(plain("message.none_selected", request_language(request)))
        job = self.services.jobs.get(job_id)
        owner = ui_owner(self.services, request)
        if owner is not None and job.owner != owner:
            raise gr.Error(plain("message.none_selected", request_language(request)))
        delete_message(self.services, job_id)
        return self.history(request), None, "", ""


def step_description(step: str | None, status: str, names: dict[str, str],
                     lang: str) -> str | None:
    """A person's words for the job's current step: ``"image,voice"`` (two branches side by
    side) reads as both names; ``"video: render"`` as the stage's name. None between stages
    (the caller keeps the last description rather than flashing "queued")."""
    if status == "queued":
        return plain("message.waiting", lang)
    if not step or step in ("queued", "done"):
        return None
    stages = [part.split(":")[0].strip() for part in step.split(",")]
    return " + ".join(names.get(st, st) for st in stages if st) or None


def describe(result: dict[str, Any]) -> str:
    engines = result.get("engines") or {}
    image = engines.get("image") or {}
    voice = engines.get("voice") or {}
    lines = [f"- video: **{engines.get('video')}**",
             f"- voice: **{voice.get('tts')}** → {voice.get('conversion')}",
             f"- cutout: **{image.get('background_removal')}**, refine: "
             f"**{image.get('sam2_refinement')}**",
             f"- mood: {result.get('emotion')} · {result.get('duration')} s · "
             f"{result.get('size')} · {result.get('processing_time')} s"]
    if result.get("fallback_used"):
        lines.append("- ⚠ a fallback engine was used for at least one step")
    return "\n".join(lines)


SIZE_LABELS = {"512x512": "message.size_square", "720x1280": "message.size_portrait",
               "1280x720": "message.size_landscape"}


def default_bgm(services: Services) -> str:
    """The track the REST default (the "celebration" mood) resolves to, shown by its title."""
    from pipelines.bgm import find_track

    try:
        return find_track("celebration", services.storage).id
    except StudioError:
        return "none"


def char_count(text: str | None, request: gr.Request | None = None) -> str:
    n = len(text or "")
    note = f"{n} / {MAX_CHARS} {plain('message.chars', request_language(request))}"
    return f"**{note}**" if n > MAX_CHARS * 0.9 else note


def build(services: Services) -> None:
    tab = MessageTab(services)
    try:  # real choices in the API schema at once; the page load refreshes them
        voices, tracks = voice_choices(services), bgm_choices(services)
    except Exception:  # noqa: BLE001 - an engine failing to list must not break the tab
        voices, tracks = [("auto", "")], [("none", "none")]
    with gr.Row():
        with gr.Column(scale=1):
            image = gr.Image(label=t("message.photo"), type="filepath",
                             sources=["upload", "webcam", "clipboard"], height=320)
            text = gr.Textbox(label=t("message.text"), lines=3, max_length=MAX_CHARS,
                              placeholder=t("message.placeholder"))
            count = gr.Markdown(t("message.count0"))
            with gr.Row():
                voice = gr.Dropdown(label=t("message.voice"), choices=voices, value="",
                                    allow_custom_value=True)
                emotion = gr.Dropdown(label=t("message.emotion"), choices=emotion_choices(),
                                      value="auto")
            with gr.Row():
                bgm = gr.Dropdown(label=t("message.bgm"), choices=tracks,
                                  value=default_bgm(services), allow_custom_value=True)
                subtitles = gr.Checkbox(label=t("message.subtitles"), value=False)
            size = gr.Radio(label=t("message.size"), value="512x512",
                            choices=[(t(SIZE_LABELS[s]), s) for s in SIZES])
            with gr.Row():
                go = gr.Button(t("message.generate"), variant="primary", scale=3)
                stop = gr.Button(t("message.cancel"), variant="secondary", scale=1)
        with gr.Column(scale=1):
            video = gr.Video(label=t("message.result"), format="mp4", height=480)
            details = gr.Markdown()
            status = gr.Markdown()
    with gr.Accordion(t("message.history"), open=False):
        gallery = gr.Gallery(label=t("message.history"), columns=6, height=240,
                             allow_preview=False)
        with gr.Row():
            refresh = gr.Button(t("message.refresh"), size="sm")
            remove = gr.Button(t("message.delete"), size="sm", variant="stop")
        selected = gr.Textbox(label=t("message.selected"), interactive=False)
        replay = gr.Video(label=t("message.result"))
        replay_details = gr.Markdown()

    text.input(char_count, text, count, show_progress="hidden", api_visibility="private")
    run = go.click(tab.generate, [image, text, voice, emotion, bgm, size, subtitles], video,
                   api_name="generate_message", concurrency_limit=4)
    run.then(tab.last_details, None, details, api_visibility="private").then(
        tab.history, None, gallery, api_visibility="private")
    stop.click(tab.cancel, None, status, api_visibility="private")
    gallery.select(tab.pick, None, [replay, selected, replay_details], api_visibility="private")
    remove.click(tab.delete, selected, [gallery, replay, selected, replay_details],
                 api_visibility="private")

    def load_choices(request: gr.Request) -> tuple[Any, Any, list[tuple[str, str]]]:
        return (gr.update(choices=voice_choices(services, request)),
                gr.update(choices=bgm_choices(services, request)), tab.history(request))

    refresh.click(load_choices, None, [voice, bgm, gallery], api_visibility="private")
    blocks = get_blocks_context()
    if blocks is not None:  # fill the pickers when a page opens (engines may come up later)
        blocks.root_block.load(load_choices, None, [voice, bgm, gallery],
                               api_visibility="private")
