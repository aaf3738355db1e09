"""The Engines panel: which engine serves each capability, and why others do not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from app.ui.text import plain, register, request_language, t, word
from app.ui.text import table as headed

COLUMNS = ["engines.col_capability", "engines.col_engine", "engines.col_ready",
           "engines.col_circuit", "engines.col_why"]

register(
    en={
        "engines.col_capability": "capability", "engines.col_engine": "engine",
        "engines.col_ready": "ready", "engines.col_circuit": "circuit",
        "engines.col_why": "why",
        "cap.tts": "speech", "cap.voice_encoder": "voice encoder",
        "cap.voice_converter": "voice converter", "cap.denoise": "clip denoising",
        "cap.naturalness": "naturalness measure",
        "cap.person_detection": "person detection", "cap.cutout": "person cutout",
        "cap.refiner": "edge refinement", "cap.talking_head": "talking head",
        "circuit.open": "open (resting)", "circuit.half_open": "half-open (trying)",
        "circuit.closed": "closed (healthy)",
    },
    ja={
        "engines.col_capability": "機能", "engines.col_engine": "エンジン",
        "engines.col_ready": "利用可", "engines.col_circuit": "回路",
        "engines.col_why": "理由",
        "cap.tts": "音声合成", "cap.voice_encoder": "声の特徴抽出",
        "cap.voice_converter": "声の変換", "cap.denoise": "録音のノイズ除去",
        "cap.naturalness": "自然さの計測",
        "cap.person_detection": "人物の検出", "cap.cutout": "人物の切り抜き",
        "cap.refiner": "輪郭の精密化", "cap.talking_head": "話す顔",
        "circuit.open": "遮断中", "circuit.half_open": "試行中", "circuit.closed": "正常",
    },
)


Inventory = Callable[[], dict[str, list[dict[str, Any]]]]
"""Each capability's engines with their readiness (``Services.inventory``)."""


def inventory_rows(inventory: Inventory, lang: str = "en") -> list[list[str]]:
    """One row per engine: capability, engine, ready, circuit (remote engines), why. The
    reasons are the engines' own diagnostics (paths, settings) and stay as they are."""
    rows = []
    yes, no = plain("word.yes", lang), plain("word.no", lang)
    for capability, engines in inventory().items():
        for engine in engines:
            circuit = engine.get("circuit")
            rows.append([word("cap.", capability, lang), engine["name"],
                         yes if engine["available"] else no,
                         word("circuit.", circuit, lang) if circuit else "", engine["reason"]])
    return rows


def build(inventory: Inventory) -> None:
    """The panel over the one thing it reads: the engines' inventory, asked on each look."""
    def shown(request: gr.Request | None = None) -> dict[str, Any]:
        lang = request_language(request)
        return headed(COLUMNS, inventory_rows(inventory, lang), lang)

    with gr.Accordion(t("engines.title"), open=False):
        table = gr.Dataframe(headers=[plain(c) for c in COLUMNS], value=shown,
                             interactive=False, wrap=True, elem_id="engines-table")
        refresh = gr.Button(t("engines.refresh"), size="sm")
        refresh.click(shown, outputs=table, api_visibility="private")
