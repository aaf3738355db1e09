"""The Models panel: the neural engines' weights (licence, source, size, sha256) and a
download button with a progress bar.

Downloads run in the model manager's background thread (the same one engines start when
downloads are allowed), so closing the page does not stop them and the Engines panel and the
fallback chains see the new weights as soon as they are verified. With the login on, only
administrators may start one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from app.ui.text import plain, register, request_language, t
from app.ui.text import table as headed
from app.usecases import models
from models.base import EngineSettings

register(
    en={"models.title": "Models", "models.pick": "Model", "models.download": "Download",
        "models.refresh": "Refresh", "models.forbidden": "Only administrators can download models.",
        "models.done": "{name}: ready ({folder})", "models.failed": "{name}: {why}",
        "models.help": "Neural engines run when their weights are in the models folder; "
                       "without them the studio uses its built-in engines.",
        "models.col_model": "model name", "models.col_status": "status", "models.col_mb": "MB",
        "models.col_licence": "licence", "models.col_commercial": "commercial use",
        "models.col_source": "source", "models.col_folder": "folder",
        "models.col_sha256": "sha256", "models.ready": "ready", "models.missing": "missing",
        "models.not_commercial": "NO", "models.unknown": "unknown model"},
    ja={"models.title": "モデル", "models.pick": "モデル", "models.download": "ダウンロード",
        "models.refresh": "更新", "models.forbidden": "モデルのダウンロードは管理者のみです。",
        "models.done": "{name}: 準備完了（{folder}）", "models.failed": "{name}：{why}",
        "models.help": "ニューラルエンジンは重みがモデルフォルダーにあるときに動きます。"
                       "ないときは内蔵エンジンを使います。",
        "models.col_model": "モデル", "models.col_status": "状態", "models.col_mb": "MB",
        "models.col_licence": "ライセンス", "models.col_commercial": "商用利用",
        "models.col_source": "入手元", "models.col_folder": "フォルダー",
        "models.col_sha256": "SHA-256", "models.ready": "準備完了", "models.missing": "未配置",
        "models.not_commercial": "不可", "models.unknown": "不明なモデル"},
)

COLUMNS = ["models.col_model", "models.col_status", "models.col_mb", "models.col_licence",
           "models.col_commercial", "models.col_source", "models.col_folder",
           "models.col_sha256"]
HEADERS = [plain(c) for c in COLUMNS]
# What each engine does and its licence note come from its model spec (declared with the
# engine, in both languages: a licence the reader cannot read is no warning at all). They are
# registered too, so the check that a Japanese page shows none of our English sees them.


def _spec_words(lang: str) -> dict[str, str]:
    specs = {n: models.spec(n) for n in models.names()}
    return {**{f"models.what.{n}": m.what.get(lang) for n, m in specs.items()},
            **{f"models.note.{n}": m.licence_note.get(lang) for n, m in specs.items()}}


register(en=_spec_words("en"), ja=_spec_words("ja"))


def _status(status: str, lang: str) -> str:
    """"ready" and "missing <files>" in ``lang``; a download's own progress or failure (the
    manager's words, with file names and reasons) as it is."""
    if status == "ready":
        return plain("models.ready", lang)
    if status.startswith("missing "):
        return f"{plain('models.missing', lang)}: {status[len('missing '):]}"
    return status


def model_rows(settings: EngineSettings, lang: str = "en") -> list[list[str]]:
    """One row per neural engine. The model's own name, licence and source stay as the
    catalogue gives them; what it does, its licence note and the table's words follow
    ``lang`` (read from its spec, so an engine registered later shows too)."""
    rows = []
    for row in models.rows(settings):
        model = models.spec(row["name"])
        commercial = (plain("word.yes", lang) if row["commercial_use"] else
                      f"{plain('models.not_commercial', lang)} "
                      f"({model.licence_note.get(lang)})")
        rows.append([
            f"{row['name']} ({model.what.get(lang)})",
            _status(row["status"], lang), f"{row['size_mb']:.1f}", row["licence"], commercial,
            row["source"], row["folder"] or "",
            " ".join(f"{f}: {sha}" for f, sha in row["sha256"].items()),
        ])
    return rows


def shown(settings: EngineSettings, request: Any = None) -> dict[str, Any]:
    lang = request_language(request)
    return headed(COLUMNS, model_rows(settings, lang), lang)


def download(settings: EngineSettings, allowed: Callable[[gr.Request | None], bool],
             name: str, request: gr.Request | None,
             progress: gr.Progress | None = None) -> tuple[dict[str, Any], str]:
    """Start (or join) the background download and follow it with a progress bar; only
    for someone ``allowed`` (an admin once the login is on)."""
    lang = request_language(request)
    if not allowed(request):
        return shown(settings, request), plain("models.forbidden", lang)
    if name not in models.names():
        return shown(settings, request), f"{plain('models.unknown', lang)}: '{name}'"
    state = models.start_download(settings, name)
    while not state.finished.wait(0.5):
        if progress is not None and state.total:
            progress(state.done / state.total, desc=state.describe())
    if state.status == "done":
        folder = models.folder(settings, name)
        text = plain("models.done", lang).format(name=name, folder=folder)
    else:
        text = plain("models.failed", lang).format(name=name, why=state.describe())
    return shown(settings, request), text


def build(engine_settings: Callable[[], EngineSettings],
          allowed: Callable[[gr.Request | None], bool]) -> None:
    """The panel over its parts: the engine settings, read afresh for each look (where the
    weights go), and who may start a download."""
    with gr.Accordion(t("models.title"), open=False):
        gr.Markdown(t("models.help"))
        def current(request: gr.Request | None = None) -> dict[str, Any]:
            return shown(engine_settings(), request)

        table = gr.Dataframe(headers=HEADERS, value=current, interactive=False, wrap=True)
        with gr.Row():
            pick = gr.Dropdown(choices=models.names(), value=models.names()[0],
                               label=t("models.pick"))
            start = gr.Button(t("models.download"), variant="primary", size="sm")
            refresh = gr.Button(t("models.refresh"), size="sm")
        note = gr.Markdown()

        def run(name: str, request: gr.Request,
                progress: gr.Progress = gr.Progress()) -> tuple[dict[str, Any], str]:
            return download(engine_settings(), allowed, name, request, progress)

        start.click(run, inputs=pick, outputs=[table, note], api_visibility="private")
        refresh.click(current, outputs=table, api_visibility="private")
        gr.Timer(5.0).tick(current, outputs=table, api_visibility="private")


__all__ = ["build", "download", "model_rows"]
