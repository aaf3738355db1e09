"""The Message tab (filled in by the message issue)."""

from __future__ import annotations

import gradio as gr

from app.services import Services
from app.ui.text import t


def build(services: Services) -> None:
    gr.Markdown(t("coming_soon"))
