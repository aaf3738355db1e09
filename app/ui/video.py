"""The Video tab: portrait + audio -> talking-head MP4, with a quick preview."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.i18n import I18nData
from PIL import Image

from app.config import Settings
from app.i18n import step_text
from app.ui.downloads import named
from app.ui.fallback import engine_name, fallback_note, operator_choices
from app.ui.message_choices import size_choices
from app.ui.text import label, plain, register, request_language, studio_error, t, ui_error
from app.ui.uploads import refuse_at_upload
from app.ui.work import Recorder
from app.usecases import video as videos
from models.chain import FallbackChain
from models.errors import StudioError

register(
    en={
        "video.portrait": "Portrait", "video.audio": "Speech audio",
        "video.engine": "Engine", "video.engine_auto": "auto (best available)",
        "video.size": "Size", "video.subtitles": "Burn in subtitles",
        "video.text": "Message text (for subtitles)", "video.seed": "Motion seed",
        "video.preview": "Quick preview (low-res)", "video.render": "Render video",
        "video.result": "Video", "video.file": "Download", "video.info": "Details",
        "video.made_by": "Made by", "video.fallback": "fallback from",
        "video.need_portrait": "Add a portrait first.", "video.need_audio": "Add the speech first.",
    },
    ja={
        "video.portrait": "ポートレート", "video.audio": "音声",
        "video.engine": "エンジン", "video.engine_auto": "自動（利用可能な最良）",
        "video.size": "サイズ", "video.subtitles": "字幕を焼き込む",
        "video.text": "メッセージ本文（字幕用）", "video.seed": "動きのシード",
        "video.preview": "クイックプレビュー（低解像度）", "video.render": "動画を生成",
        "video.result": "動画", "video.file": "ダウンロード", "video.info": "詳細",
        "video.made_by": "生成エンジン", "video.fallback": "フォールバック元",
        "video.need_portrait": "先にポートレートを追加してください。",
        "video.need_audio": "先に音声を追加してください。",
    },
)


def run_render(chain: Callable[[str], FallbackChain[Any]], settings: Settings,
               record: Recorder, image: Any, audio_path: str | None, engine: str,
               size: str, subtitles: bool, text: str, seed: float, preview: bool,
               progress: gr.Progress | None = None, request: Any = None
               ) -> tuple[str, str | None, str]:
    """The tab's one action (also the ``/generate_video`` API)."""
    lang = request_language(request)
    if image is None:
        raise ui_error(plain("video.need_portrait", lang), lang)
    if not audio_path:
        raise ui_error(plain("video.need_audio", lang), lang)
    kind = "video.preview" if preview else "video.render"
    try:
        with record(kind, {"size": size, "engine": engine}, request):

            def report(fraction: float, step: str) -> None:
                if progress is not None:
                    progress(fraction, desc=step_text(step, lang))

            rendered = videos.render_now(
                chain("talking_head"), image, Path(audio_path).read_bytes(),
                Path(audio_path).name,
                options={"size": size, "subtitles": bool(subtitles and text),
                         "engine": None if engine == "auto" else engine,
                         "seed": int(seed or 0), "preview": preview},
                text=text or None, progress=report)
            path, info = rendered.path, rendered.info
    except StudioError as exc:
        raise studio_error(exc, lang) from None
    made = f"**{engine_name('talking_head', info['backend'], lang)}**"
    details = (f"{made} · {str(info['size']).replace('x', '×')} · "
               f"{plain('message.note_length', lang)} {info['duration']:.1f} s · "
               f"{plain('message.note_took', lang)} {info['processing_time']:.1f} s")
    note = fallback_note("talking_head", info["backend"], info.get("attempts") or (),
                         operator_choices(settings), lang)
    if note:
        details += f"\n\n⚠ {note}"
    shown = named(str(path), "video", lang)
    return shown, shown, details


def build(chain: Callable[[str], FallbackChain[Any]], settings: Settings,
          record: Recorder) -> None:
    """The tab over its parts: the engines it runs, the order the operator chose for them,
    its job records."""
    engines: list[str | tuple[str | I18nData, str]] = [
        (t("video.engine_auto"), "auto"),
        *[(label("engine.talking_head.", name), name)
          for name in settings.backends("talking_head")]]
    with gr.Row():
        with gr.Column():
            image = gr.Image(label=t("video.portrait"), type="pil", image_mode=None,
                             sources=["upload", "clipboard"], elem_id="video-portrait")
            refuse_at_upload(image)  # a file that is not a picture: said now, no broken preview
            audio = gr.Audio(label=t("video.audio"), type="filepath",
                             sources=["upload", "microphone"], elem_id="video-audio")
            text = gr.Textbox(label=t("video.text"), lines=2, max_length=1000)
            with gr.Row():
                engine = gr.Dropdown(engines, value="auto", label=t("video.engine"))
                size = gr.Dropdown(size_choices(), value=videos.DEFAULT_SIZE, label=t("video.size"))
            with gr.Row():
                subtitles = gr.Checkbox(label=t("video.subtitles"), value=False)
                seed = gr.Number(label=t("video.seed"), value=0, precision=0, minimum=0)
            with gr.Row():
                preview_btn = gr.Button(t("video.preview"), elem_id="video-preview")
                render_btn = gr.Button(t("video.render"), variant="primary",
                                       elem_id="video-render")
        with gr.Column():
            video = gr.Video(label=t("video.result"), elem_id="video-result")
            file = gr.File(label=t("video.file"))
            info = gr.Markdown()
    preview_flag = gr.State(True)
    full_flag = gr.State(False)

    def go(image: Image.Image | None, audio: str | None, engine: str, size: str,
           subtitles: bool, text: str, seed: float, preview: bool,
           request: gr.Request | None = None, progress: gr.Progress = gr.Progress()
           ) -> tuple[str, str | None, str]:
        return run_render(chain, settings, record, image, audio, engine, size, subtitles, text, seed,
                          preview, progress, request)

    inputs = [image, audio, engine, size, subtitles, text, seed]
    preview_btn.click(go, inputs=[*inputs, preview_flag], outputs=[video, file, info],
                      api_visibility="private", concurrency_id="video", concurrency_limit=1)
    render_btn.click(go, inputs=[*inputs, full_flag], outputs=[video, file, info],
                     api_name="generate_video", concurrency_id="video", concurrency_limit=1)
