"""The Engines panel: which engine serves each capability, and why others do not."""

from __future__ import annotations

import gradio as gr

from app.services import Services
from app.ui.text import t

CIRCUIT_MARKS = {"open": "open", "half_open": "half-open", "closed": "closed"}


def inventory_rows(services: Services) -> list[list[str]]:
    """One row per engine: capability, engine, ready, circuit (remote engines), why."""
    rows = []
    for capability, engines in services.inventory().items():
        for engine in engines:
            circuit = engine.get("circuit")
            rows.append([capability, engine["name"], "yes" if engine["available"] else "no",
                         CIRCUIT_MARKS.get(circuit, circuit) if circuit else "",
                         engine["reason"]])
    return rows


def build(services: Services) -> None:
    with gr.Accordion(t("engines.title"), open=False):
        table = gr.Dataframe(
            headers=["capability", "engine", "ready", "circuit", "why"],
            value=lambda: inventory_rows(services), interactive=False, wrap=True,
        )
        refresh = gr.Button(t("engines.refresh"), size="sm")
        refresh.click(lambda: inventory_rows(services), outputs=table, api_visibility="private")
