"""The Message tab: what a person comes for. Photo + words -> finished video, through the
same queued job as ``POST /api/video/generate`` (so it shows up in the history, survives a
page reload, and can be cancelled). Gradio API: ``/generate_message``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.context import get_blocks_context

from app.i18n import step_text
from app.runner.jobs import Jobs
from app.runner.queue import TaskQueue
from app.storage import Storage
from app.ui.downloads import named
from app.ui.fallback import operator_choices
from app.ui.message_choices import (
    bgm_choices,
    default_bgm,
    emotion_choices,
    size_choices,
    voice_choices,
)
from app.ui.message_words import (
    Clock,
    describe,
    history_caption,
    step_description,
    time_left,
)
from app.ui.owners import UiState, ui_owner
from app.ui.text import (
    plain,
    register,
    request_language,
    studio_error,
    t,
    ui_error,
)
from app.ui.uploads import refuse_at_upload
from app.usecases import messages
from app.usecases.image import load_picture
from app.usecases.video import DEFAULT_SIZE
from app.usecases.voices import Voices
from models.errors import StudioError

MAX_CHARS = 1000

register(
    en={
        "message.photo": "Photo (upload or webcam)", "message.text": "Message",
        "message.placeholder": "e.g. Happy birthday! Wishing you a wonderful year.",
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
        "message.note_video": "video", "message.note_voice": "voice",
        "message.note_cutout": "cutout", "message.note_refine": "refine",
        "message.note_mood": "mood", "message.note_length": "length",
        "message.note_took": "made in",
        "message.voice_profile": "profile", "message.music_none": "no music",
        "message.nothing_running": "Nothing is being made right now.",
        "message.left_s": "about {n} s left", "message.left_min": "about {n} min left",
        "message.no_person": "No person was found in the photo. Use a photo where a face is "
                             "clearly visible.",
        "message.too_small": "The photo is only {width}×{height} pixels: too small to find a "
                             "face in. Use a photo at least {side} pixels on each side.",
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
        "message.note_video": "動画", "message.note_voice": "音声",
        "message.note_cutout": "切り抜き", "message.note_refine": "輪郭の精密化",
        "message.note_mood": "雰囲気", "message.note_length": "長さ",
        "message.note_took": "作成時間",
        "message.voice_profile": "プロファイル", "message.music_none": "音楽なし",
        "message.nothing_running": "いま作成中のものはありません。",
        "message.left_s": "残り約 {n} 秒", "message.left_min": "残り約 {n} 分",
        "message.no_person": "写真に人物が見つかりません。顔がはっきり写った写真を使ってください。",
        "message.too_small": "写真が {width}×{height} ピクセルしかなく、顔を見つけるには小さすぎます。"
                             "縦横 {side} ピクセル以上の写真を使ってください。",
    },
)


class Cancelled(Exception):
    """The job this call waited on was cancelled (a neutral end, not an error)."""


@dataclass(frozen=True)
class MessageDesk:
    """The Message tab's parts: the store its videos are in, the jobs it follows, the
    queue that cancels one, who is asking, the voices it offers, and the message use cases
    bound once to the app (:func:`app.usecases.messages.submit_message` checks a voice
    against the VoiceKit the services cache)."""

    storage: Storage
    jobs: Jobs
    queue: TaskQueue
    state: UiState
    voices: Voices
    submit: Callable[[bytes, dict[str, Any], str | None], dict[str, Any]]
    delete: Callable[[str], int]


class MessageTab:
    """State shared by the tab's events: the job each browser session is waiting on, and
    the one it made last (so "how it was made" shows this session's message, not another's)."""

    def __init__(self, desk: MessageDesk) -> None:
        self.desk = desk
        self.chosen = operator_choices(desk.state.settings)  # whose skips people hear of
        self.running: dict[str, str] = {}
        self.finished: dict[str, str] = {}

    def generate(self, image: str | None, text: str, voice: str = "", emotion: str = "auto",
                 bgm: str = "celebration", size: str = DEFAULT_SIZE, subtitles: bool = False,
                 request: gr.Request | None = None,
                 progress: gr.Progress = gr.Progress()) -> str:  # Gradio's idiom
        """Photo + text -> MP4 path (the ``/generate_message`` API; a cancel is an error
        to a script, which must not mistake it for a result).

        The job runs on the studio's queue like a REST submission; this call waits for it,
        passing the job's weighted progress and current stage on to the page (or to
        ``gradio_client``'s ``job.status()``)."""
        lang = request_language(request)
        try:
            job_id = self._run(image, text, voice, emotion, bgm, size, subtitles, request,
                               progress)
        except Cancelled:
            raise ui_error(plain("message.cancelled", lang), lang) from None
        return self._video(job_id, lang)

    def generate_ui(self, image: str | None, text: str, voice: str = "", emotion: str = "auto",
                    bgm: str = "celebration", size: str = DEFAULT_SIZE, subtitles: bool = False,
                    request: gr.Request | None = None,
                    progress: gr.Progress = gr.Progress()  # Gradio's idiom
                    ) -> tuple[str | None, str, str]:
        """The Generate button: (video, how it was made, status). A cancel ends in a plain
        note with nothing in the player; errors are toasts in the page's language."""
        lang = request_language(request)
        try:
            job_id = self._run(image, text, voice, emotion, bgm, size, subtitles, request,
                               progress)
        except Cancelled:
            return None, "", plain("message.cancelled", lang)
        job = self.desk.jobs.get(job_id)
        return self._video(job_id, lang), describe(job.result or {}, lang, self.chosen), ""

    def _run(self, image: str | None, text: str, voice: str, emotion: str, bgm: str,
             size: str, subtitles: bool, request: gr.Request | None,
             progress: gr.Progress) -> str:
        lang = request_language(request)
        if not image:
            raise ui_error(plain("message.no_photo", lang), lang)
        check_photo(image, request)
        try:
            answer = self.desk.submit(
                Path(image).read_bytes(),
                {"text": text, "voice": voice or None, "emotion": emotion, "bgm": bgm,
                 "size": size, "subtitles": subtitles}, ui_owner(self.desk.state, request))
        except StudioError as exc:
            raise studio_error(exc, lang) from None
        job_id = str(answer["task_id"])
        session = getattr(request, "session_hash", None) or job_id
        self.running[session] = job_id
        try:
            self._wait(job_id, lang, progress)
        finally:
            self.running.pop(session, None)
        self.finished[session] = job_id
        while len(self.finished) > 1000:  # forget the oldest sessions
            self.finished.pop(next(iter(self.finished)))
        return job_id

    def _video(self, job_id: str, lang: str = "en") -> str:
        """The finished video, under a name people recognise when they download it."""
        job = self.desk.jobs.get(job_id)
        return named(str(self.desk.storage.local_path((job.result or {})["video_key"])),
                     "message", lang, job.created_at)

    def _wait(self, job_id: str, lang: str, progress: gr.Progress) -> None:
        desc = plain("message.waiting", lang)
        progress(0.0, desc=desc)
        clock = Clock()
        while True:
            try:
                job = self.desk.jobs.get(job_id)
            except StudioError as exc:  # deleted while we waited
                raise studio_error(exc, lang) from None
            if job.status == "completed":
                progress(1.0, desc=step_text("done", lang))
                return
            if job.status == "cancelled":
                raise Cancelled(job_id)
            if job.status == "failed":
                error = job.error or {}
                message = error.get("message_ja") if lang == "ja" else None
                if error.get("code") in TAB_WORDS:  # the tab's own words for it
                    message = plain(TAB_WORDS[str(error.get("code"))], lang)
                raise ui_error(f"{message or error.get('message')} ({error.get('code')})", lang)
            desc = step_description(job.current_step, job.status, lang) or desc
            fraction = job.progress / 100.0
            left = clock.left(fraction) if job.status == "processing" else None
            progress(fraction, desc=f"{desc} · {time_left(left, lang)}" if left else desc)
            time.sleep(0.5)

    def cancel(self, request: gr.Request | None = None) -> str:
        session = getattr(request, "session_hash", None)
        job_id = self.running.get(session or "")
        if not job_id:
            return plain("message.nothing_running", request_language(request))
        try:
            self.desk.queue.cancel(job_id)
        except StudioError:
            pass
        return plain("message.cancelled", request_language(request))

    def last_details(self, request: gr.Request | None = None) -> str:
        """How this session's last message was made (engines, mood, time)."""
        job_id = self.finished.get(getattr(request, "session_hash", None) or "")
        if not job_id:
            return ""
        try:
            job = self.desk.jobs.get(job_id)
        except StudioError:
            return ""
        if job.status != "completed":
            return ""
        return describe(job.result or {}, request_language(request), self.chosen)

    def history(self, request: gr.Request | None = None) -> list[tuple[str, str]]:
        """Finished messages, newest first: the framed portrait (the face, not a crop of the
        photo's top), the date and the first words."""
        items = []
        owner = ui_owner(self.desk.state, request)
        lang = request_language(request)
        for job in messages.history(self.desk.jobs, limit=60, owner=owner):
            result = job.result or {}
            if job.status != "completed" or not result.get("portrait_key"):
                continue
            try:
                thumb = self.desk.storage.local_path(result["portrait_key"])
            except StudioError:
                continue
            items.append((str(thumb), history_caption(job.created_at, job.params.get("text"),
                                                      job.id, lang)))
        return items

    def pick(self, evt: gr.SelectData, request: gr.Request | None = None
             ) -> tuple[str | None, str, str]:
        caption = str(evt.value.get("caption") if isinstance(evt.value, dict) else evt.value)
        shown = caption.rsplit("#", 1)[-1].strip()
        owner = ui_owner(self.desk.state, request)
        job_id = messages.resolve_id(self.desk.jobs, shown, owner)
        try:
            job = self.desk.jobs.get(job_id)
            video = self.desk.storage.local_path((job.result or {})["video_key"])
        except (StudioError, KeyError, TypeError):
            return None, "", ""
        lang = request_language(request)
        return (named(str(video), "message", lang, job.created_at), job_id,
                describe(job.result or {}, lang, self.chosen))

    def delete(self, job_id: str, request: gr.Request | None = None
               ) -> tuple[list[tuple[str, str]], None, str, str]:
        lang = request_language(request)
        if not job_id:
            raise ui_error(plain("message.none_selected", lang), lang)
        try:
            job = self.desk.jobs.get(job_id)
        except StudioError as exc:
            raise studio_error(exc, lang) from None
        owner = ui_owner(self.desk.state, request)
        if owner is not None and job.owner != owner:
            raise ui_error(plain("message.none_selected", lang), lang)
        self.desk.delete(job_id)
        return self.history(request), None, "", ""


TAB_WORDS = {"IMAGE_NO_PERSON": "message.no_person"}
"""Job errors whose own message names a control this tab does not have (the detection
sensitivity is on the Image tab), said in this tab's words."""

MIN_PHOTO_SIDE = 64
"""A photo narrower or lower than this has no face big enough to animate."""


def check_photo(image: str | None, request: gr.Request | None = None) -> None:
    """Said as soon as a photo is added, not after Generate: a file that is not a picture,
    or a picture too small to find anyone in."""
    if not image:
        return
    lang = request_language(request)
    try:
        photo = load_picture(Path(image).read_bytes(), Path(image).name)
    except StudioError as exc:
        raise studio_error(exc, lang) from None
    if min(photo.size) < MIN_PHOTO_SIDE:
        raise ui_error(plain("message.too_small", lang).format(
            width=photo.width, height=photo.height, side=MIN_PHOTO_SIDE), lang)


def char_count(text: str | None, request: gr.Request | None = None) -> str:
    n = len(text or "")
    note = f"{n} / {MAX_CHARS} {plain('message.chars', request_language(request))}"
    return f"**{note}**" if n > MAX_CHARS * 0.9 else note


def clear_result() -> tuple[None, str, str]:
    """A new run starts from an empty player: the last video and its notes go at once."""
    return None, "", ""


def build(desk: MessageDesk) -> None:
    """The tab over its parts (:class:`MessageDesk`), never the whole app."""
    tab = MessageTab(desk)
    try:  # real choices in the API schema at once; the page load refreshes them
        voices, tracks = (voice_choices(desk.voices, desk.state),
                          bgm_choices(desk.storage, desk.state))
    except Exception:  # an engine failing to list must not break the tab
        voices, tracks = [(t("word.auto"), "")], [(t("message.music_none"), "none")]
    with gr.Row(elem_id="message-row"):
        with gr.Column(scale=1, min_width=300):
            image = gr.Image(label=t("message.photo"), type="filepath",
                             sources=["upload", "webcam", "clipboard"], height=320,
                             elem_id="message-photo")
            text = gr.Textbox(label=t("message.text"), lines=3, max_length=MAX_CHARS,
                              placeholder=t("message.placeholder"), elem_id="message-text")
            count = gr.Markdown(t("message.count0"), elem_id="message-count")
            with gr.Row():
                voice = gr.Dropdown(label=t("message.voice"), choices=voices, value="",
                                    allow_custom_value=True, min_width=160,
                                    elem_id="message-voice")
                emotion = gr.Dropdown(label=t("message.emotion"), choices=emotion_choices(),
                                      value="auto", min_width=160)
            with gr.Row(elem_id="message-music-row"):
                bgm = gr.Dropdown(label=t("message.bgm"), choices=tracks,
                                  value=default_bgm(desk.storage), allow_custom_value=True,
                                  min_width=160, elem_id="message-bgm")
                subtitles = gr.Checkbox(label=t("message.subtitles"), value=False,
                                        min_width=120)
            size = gr.Radio(label=t("message.size"), value=DEFAULT_SIZE, choices=size_choices(),
                            elem_id="message-size")
            with gr.Row():
                go = gr.Button(t("message.generate"), variant="primary", scale=3,
                               elem_id="message-generate", min_width=160)
                stop = gr.Button(t("message.cancel"), variant="secondary", scale=1,
                                 elem_id="message-cancel", min_width=100)
            # the bar again right under the button, where the hand is (the player's bar is
            # out of sight once the page is scrolled down to Generate)
            under_button = gr.Markdown(elem_id="message-progress", elem_classes=["studio-note"])
        with gr.Column(scale=1, min_width=300):
            video = gr.Video(label=t("message.result"), format="mp4", height=480,
                             elem_id="message-video")
            status = gr.Markdown(elem_id="message-status")
            details = gr.Markdown(elem_id="message-details")
    with gr.Accordion(t("message.history"), open=False, elem_id="message-history"):
        gallery = gr.Gallery(label=t("message.history"), columns=6, height=260,
                             allow_preview=False, object_fit="contain",
                             elem_id="message-gallery")
        with gr.Row():
            refresh = gr.Button(t("message.refresh"), size="sm")
            remove = gr.Button(t("message.delete"), size="sm", variant="stop")
        selected = gr.Textbox(label=t("message.selected"), interactive=False)
        replay = gr.Video(label=t("message.result"), elem_id="message-replay")
        replay_details = gr.Markdown()

    # every change of the text (typing, paste, clear, a value set by an event) recounts;
    # unqueued, so the count never waits behind a running message
    text.change(char_count, text, count, show_progress="hidden", queue=False,
                trigger_mode="always_last", api_visibility="private")
    inputs = [image, text, voice, emotion, bgm, size, subtitles]
    run = go.click(clear_result, None, [video, details, status], queue=False,
                   show_progress="hidden", api_visibility="private").then(
        tab.generate_ui, inputs, [video, details, status], concurrency_limit=4,
        concurrency_id="message", api_visibility="private",
        show_progress_on=[video, under_button])
    run.then(tab.history, None, gallery, api_visibility="private")
    # the script entry point (gradio_client "/generate_message"): a plain path, or an error
    api_button = gr.Button(visible=False)
    api_button.click(tab.generate, inputs, video, api_name="generate_message",
                     concurrency_limit=4, concurrency_id="message")
    stop.click(tab.cancel, None, status, queue=False, api_visibility="private")
    refuse_at_upload(image, check_photo)
    gallery.select(tab.pick, None, [replay, selected, replay_details], api_visibility="private")
    remove.click(tab.delete, selected, [gallery, replay, selected, replay_details],
                 api_visibility="private")

    def load_choices(request: gr.Request) -> tuple[Any, Any, list[tuple[str, str]]]:
        return (gr.update(choices=voice_choices(desk.voices, desk.state, request)),
                gr.update(choices=bgm_choices(desk.storage, desk.state, request)),
                tab.history(request))

    refresh.click(load_choices, None, [voice, bgm, gallery], api_visibility="private")
    blocks = get_blocks_context()
    if blocks is not None:  # fill the pickers when a page opens (engines may come up later)
        blocks.root_block.load(load_choices, None, [voice, bgm, gallery],
                               api_visibility="private")
