"""The Models panel: the neural engines' weights (licence, source, size, sha256) and a
download button with a progress bar.

Downloads run in the model manager's background thread (the same one engines start when
downloads are allowed), so closing the page does not stop them and the Engines panel and the
fallback chains see the new weights as soon as they are verified. With the login on, only
administrators may start one.
"""

from __future__ import annotations

import gradio as gr

from app.services import Services
from app.ui.jobs import is_admin
from app.ui.text import plain, register, request_language, t
from models.catalog import CATALOG
from models.downloads import ModelManager, manager_for

register(
    en={"models.title": "Models", "models.pick": "Model", "models.download": "Download",
        "models.refresh": "Refresh", "models.forbidden": "Only administrators can download models.",
        "models.done": "{name}: ready ({folder})", "models.failed": "{name}: {why}",
        "models.help": "Neural engines run when their weights are in the models folder; "
                       "without them the studio uses its built-in engines."},
    ja={"models.title": "モデル", "models.pick": "モデル", "models.download": "ダウンロード",
        "models.refresh": "更新", "models.forbidden": "モデルのダウンロードは管理者のみです。",
        "models.done": "{name}: 準備完了（{folder}）", "models.failed": "{name}: {why}",
        "models.help": "ニューラルエンジンは重みがモデルフォルダーにあるときに動きます。"
                       "ないときは内蔵エンジンを使います。"},
)

HEADERS = ["model", "status", "MB", "licence", "commercial use", "source", "folder", "sha256"]


def manager(services: Services) -> ModelManager:
    return manager_for(services.settings.engine_settings())


def model_rows(services: Services) -> list[list[str]]:
    rows = []
    for row in manager(services).rows():
        rows.append([
            f"{row['name']} — {row['title']}", row["status"], f"{row['size_mb']:.1f}",
            row["licence"], "yes" if row["commercial_use"] else "NO (" + row["licence_note"] + ")",
            row["source"], row["folder"] or "",
            " ".join(f"{f}: {sha}" for f, sha in row["sha256"].items()),
        ])
    return rows


def download(services: Services, name: str, request: gr.Request | None,
             progress: gr.Progress | None = None) -> tuple[list[list[str]], str]:
    """Start (or join) the background download and follow it with a progress bar."""
    lang = request_language(request)
    if not is_admin(services, request):
        return model_rows(services), plain("models.forbidden", lang)
    if name not in CATALOG:
        return model_rows(services), f"unknown model '{name}'"
    state = manager(services).start(name, force=True)
    while not state.finished.wait(0.5):
        if progress is not None and state.total:
            progress(state.done / state.total, desc=state.describe())
    if state.status == "done":
        folder = CATALOG[name].folder(services.settings.engine_settings())
        text = plain("models.done", lang).format(name=name, folder=folder)
    else:
        text = plain("models.failed", lang).format(name=name, why=state.describe())
    return model_rows(services), text


def build(services: Services) -> None:
    with gr.Accordion(t("models.title"), open=False):
        gr.Markdown(t("models.help"))
        table = gr.Dataframe(headers=HEADERS, value=lambda: model_rows(services),
                             interactive=False, wrap=True)
        with gr.Row():
            pick = gr.Dropdown(choices=list(CATALOG), value=next(iter(CATALOG)),
                               label=t("models.pick"))
            start = gr.Button(t("models.download"), variant="primary", size="sm")
            refresh = gr.Button(t("models.refresh"), size="sm")
        note = gr.Markdown()

        def run(name: str, request: gr.Request,
                progress: gr.Progress = gr.Progress()) -> tuple[list[list[str]], str]:
            return download(services, name, request, progress)

        start.click(run, inputs=pick, outputs=[table, note], api_visibility="private")
        refresh.click(lambda: model_rows(services), outputs=table, api_visibility="private")
        gr.Timer(5.0).tick(lambda: model_rows(services), outputs=table,
                           api_visibility="private")


__all__ = ["build", "download", "model_rows"]
