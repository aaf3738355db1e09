"""Gradio Blocks: one module per tab, mounted on the FastAPI app at ``/``."""

from __future__ import annotations

import gradio as gr

from app.services import Services
from app.ui import bgm, engines, image, jobs, message, prosody, video, voice
from app.ui import models as models_panel
from app.ui.text import build_i18n, t
from app.ui.uploads import StudioBlocks

TABS = (
    ("tab.message", message), ("tab.voice", voice), ("tab.image", image),
    ("tab.prosody", prosody), ("tab.bgm", bgm), ("tab.video", video),
    ("tab.jobs", jobs),
)

CSS = """
.studio-footer {opacity: .7; font-size: .85em; text-align: center}
"""


def build_blocks(services: Services) -> gr.Blocks:
    with StudioBlocks(title="Video Message Studio") as demo:
        gr.Markdown(t("app.title"), elem_id="studio-title")
        gr.Markdown(t("app.subtitle"))
        with gr.Tabs():
            for label, module in TABS:
                with gr.Tab(t(label), id=label.split(".")[1]):
                    module.build(services)
        engines.build(services)
        models_panel.build(services)
        gr.Markdown(
            f"Video Message Studio {services.version} · data: "
            f"`{services.settings.data_dir.resolve()}` · storage: {services.storage.name}",
            elem_classes=["studio-footer"],
        )
    return demo


__all__ = ["CSS", "build_blocks", "build_i18n"]
