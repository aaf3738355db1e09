"""The Models panel: the neural engines' weights (licence, source, size, sha256) and a
download button with a progress bar.

Downloads run in the model manager's background thread (the same one engines start when
downloads are allowed), so closing the page does not stop them and the Engines panel and the
fallback chains see the new weights as soon as they are verified. With the login on, only
administrators may start one.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.services import Services
from app.ui.jobs import is_admin
from app.ui.text import plain, register, request_language, t
from app.ui.text import table as headed
from models.catalog import CATALOG
from models.downloads import ModelManager, manager_for

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
        "models.not_commercial": "NO", "models.unknown": "unknown model",
        "models.what.openvoice": "voice conversion", "models.what.wav2lip": "lip-sync",
        "models.what.birefnet": "cutout", "models.what.segformer": "human parsing",
        "models.what.sam2": "edge refinement"},
    ja={"models.title": "モデル", "models.pick": "モデル", "models.download": "ダウンロード",
        "models.refresh": "更新", "models.forbidden": "モデルのダウンロードは管理者のみです。",
        "models.done": "{name}: 準備完了（{folder}）", "models.failed": "{name}：{why}",
        "models.help": "ニューラルエンジンは重みがモデルフォルダーにあるときに動きます。"
                       "ないときは内蔵エンジンを使います。",
        "models.col_model": "モデル", "models.col_status": "状態", "models.col_mb": "MB",
        "models.col_licence": "ライセンス", "models.col_commercial": "商用利用",
        "models.col_source": "入手元", "models.col_folder": "フォルダー",
        "models.col_sha256": "SHA-256", "models.ready": "準備完了", "models.missing": "未配置",
        "models.not_commercial": "不可", "models.unknown": "不明なモデル",
        "models.what.openvoice": "声の変換", "models.what.wav2lip": "口の動き",
        "models.what.birefnet": "切り抜き", "models.what.segformer": "人体の部位分け",
        "models.what.sam2": "輪郭の精密化"},
)

COLUMNS = ["models.col_model", "models.col_status", "models.col_mb", "models.col_licence",
           "models.col_commercial", "models.col_source", "models.col_folder",
           "models.col_sha256"]
HEADERS = [plain(c) for c in COLUMNS]
# The catalogue's licence notes, and what they say in Japanese (a licence the reader cannot
# read is no warning at all).
LICENCE_NOTES_JA = {
    "openvoice": "MIT: 商用・非商用とも自由に使えます。",
    "wav2lip": ("非商用: Wav2Lip の作者はこの重みを個人・研究・非商用の利用に限って公開しています"
                "（LRS2 で学習）。商用利用には Sync Labs のライセンスが必要です。"),
    "birefnet": "MIT: 商用・非商用とも自由に使えます。",
    "segformer": "MIT（モデルカード）。学習に使った ATR データセットの条件は研究用です。",
    "sam2": "Apache-2.0: 商用・非商用とも自由に使えます。",
}
register(en={f"models.note.{n}": m.licence_note for n, m in CATALOG.items()},
         ja={f"models.note.{n}": LICENCE_NOTES_JA[n] for n in CATALOG})


def manager(services: Services) -> ModelManager:
    return manager_for(services.settings.engine_settings())


def _status(status: str, lang: str) -> str:
    """"ready" and "missing <files>" in ``lang``; a download's own progress or failure (the
    manager's words, with file names and reasons) as it is."""
    if status == "ready":
        return plain("models.ready", lang)
    if status.startswith("missing "):
        return f"{plain('models.missing', lang)}: {status[len('missing '):]}"
    return status


def model_rows(services: Services, lang: str = "en") -> list[list[str]]:
    """One row per neural engine. The model's own name, licence text and source stay as the
    catalogue gives them; what it does and the table's words follow ``lang``."""
    rows = []
    for row in manager(services).rows():
        commercial = (plain("word.yes", lang) if row["commercial_use"] else
                      f"{plain('models.not_commercial', lang)} "
                      f"({plain('models.note.' + row['name'], lang)})")
        rows.append([
            f"{row['name']} ({plain('models.what.' + row['name'], lang)})",
            _status(row["status"], lang), f"{row['size_mb']:.1f}", row["licence"], commercial,
            row["source"], row["folder"] or "",
            " ".join(f"{f}: {sha}" for f, sha in row["sha256"].items()),
        ])
    return rows


def shown(services: Services, request: Any = None) -> dict[str, Any]:
    lang = request_language(request)
    return headed(COLUMNS, model_rows(services, lang), lang)


def download(services: Services, name: str, request: gr.Request | None,
             progress: gr.Progress | None = None) -> tuple[dict[str, Any], str]:
    """Start (or join) the background download and follow it with a progress bar."""
    lang = request_language(request)
    if not is_admin(services, request):
        return shown(services, request), plain("models.forbidden", lang)
    if name not in CATALOG:
        return shown(services, request), f"{plain('models.unknown', lang)}: '{name}'"
    state = manager(services).start(name, force=True)
    while not state.finished.wait(0.5):
        if progress is not None and state.total:
            progress(state.done / state.total, desc=state.describe())
    if state.status == "done":
        folder = CATALOG[name].folder(services.settings.engine_settings())
        text = plain("models.done", lang).format(name=name, folder=folder)
    else:
        text = plain("models.failed", lang).format(name=name, why=state.describe())
    return shown(services, request), text


def build(services: Services) -> None:
    with gr.Accordion(t("models.title"), open=False):
        gr.Markdown(t("models.help"))
        def current(request: gr.Request | None = None) -> dict[str, Any]:
            return shown(services, request)

        table = gr.Dataframe(headers=HEADERS, value=current, interactive=False, wrap=True)
        with gr.Row():
            pick = gr.Dropdown(choices=list(CATALOG), value=next(iter(CATALOG)),
                               label=t("models.pick"))
            start = gr.Button(t("models.download"), variant="primary", size="sm")
            refresh = gr.Button(t("models.refresh"), size="sm")
        note = gr.Markdown()

        def run(name: str, request: gr.Request,
                progress: gr.Progress = gr.Progress()) -> tuple[dict[str, Any], str]:
            return download(services, name, request, progress)

        start.click(run, inputs=pick, outputs=[table, note], api_visibility="private")
        refresh.click(current, outputs=table, api_visibility="private")
        gr.Timer(5.0).tick(current, outputs=table, api_visibility="private")


__all__ = ["build", "download", "model_rows"]
