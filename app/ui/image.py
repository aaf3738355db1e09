"""The Image tab: upload a photo, pick the person, see the cutout and frame it.

API names: ``/detect_people`` (photo, sensitivity -> thumbnails, people JSON) and ``/cutout``
(photo + selection + framing -> original, cutout on a checkerboard, edge close-up, framed
portrait, download). Uploads are decoded by :mod:`app.usecases.image` like the REST API's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from app.ui.text import plain, register, request_language, studio_error, t, ui_error
from app.ui.uploads import refuse_at_upload
from app.ui.work import Recorder
from app.usecases import image as images
from models.chain import FallbackChain
from models.errors import StudioError

register(
    en={
        "image.intro": "Upload a photo. Detect the people in it, choose who to cut out, then "
                       "frame the portrait for the video.",
        "image.photo": "Photo", "image.sensitivity": "Detection sensitivity",
        "image.detect": "Detect people", "image.people": "People found (click to choose)",
        "image.selected": "Cut out", "image.refine": "Refine edges (SAM2 or closed-form)",
        "image.aspect": "Aspect", "image.size": "Size (long side, px)",
        "image.padding": "Padding (px)", "image.background": "Background",
        "image.color": "Colour", "image.builtin": "Built-in background",
        "image.bg_upload": "Background image", "image.cutout": "Cut out and frame",
        "image.original": "Original", "image.checker": "Cutout",
        "image.closeup": "Edge close-up", "image.framed": "Framed portrait",
        "image.download": "Download", "image.engines": "Engine report",
        "image.people_data": "Detections (boxes in photo pixels)",
        "image.no_photo": "Upload a photo first.",
        "image.several": "Several people are cut out together when you tick more than one.",
        "bg.transparent": "transparent", "bg.solid": "solid colour", "bg.blur": "blurred photo",
        "bg.builtin": "built-in", "bg.upload": "your image",
    },
    ja={
        "image.intro": "写真をアップロードし、写っている人を検出して切り抜く人を選び、"
                       "動画用に構図を整えます。",
        "image.photo": "写真", "image.sensitivity": "検出感度",
        "image.detect": "人物を検出", "image.people": "検出された人物（クリックで選択）",
        "image.selected": "切り抜く人物", "image.refine": "輪郭を精密化（SAM2 またはクローズドフォーム）",
        "image.aspect": "アスペクト比", "image.size": "サイズ（長辺 px）",
        "image.padding": "余白（px）", "image.background": "背景",
        "image.color": "色", "image.builtin": "内蔵背景",
        "image.bg_upload": "背景画像", "image.cutout": "切り抜いて構図を整える",
        "image.original": "元画像", "image.checker": "切り抜き",
        "image.closeup": "輪郭の拡大", "image.framed": "構図済みポートレート",
        "image.download": "ダウンロード", "image.engines": "処理の記録",
        "image.people_data": "検出結果（写真上の座標）",
        "image.no_photo": "先に写真をアップロードしてください。",
        "image.several": "複数の人を選ぶと、まとめて切り抜きます。",
        "bg.transparent": "透明", "bg.solid": "単色", "bg.blur": "写真をぼかす",
        "bg.builtin": "内蔵背景", "bg.upload": "自分の画像",
    },
)


register(  # the shipped backgrounds' names come from their manifest, in both languages
    en={f"bg.builtin.{e['id']}": str(e.get("name") or e["id"]) for e in images.choices().backgrounds},
    ja={f"bg.builtin.{e['id']}": str(e.get("name_ja") or e.get("name") or e["id"])
        for e in images.choices().backgrounds},
)


def _load(path: str | None, lang: str = "en") -> Image.Image:
    if not path:
        raise ui_error(plain("image.no_photo", lang), lang)
    try:
        return images.load_picture(Path(path).read_bytes(), Path(path).name)
    except StudioError as exc:
        raise studio_error(exc, lang) from None


def checkerboard(rgba: Image.Image, cell: int = 12) -> Image.Image:
    """The cutout over a grey checkerboard, so transparency is visible."""
    w, h = rgba.size
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((xx // cell + yy // cell) % 2)[..., None] == 0, 235, 190)
    base = Image.fromarray(np.repeat(board, 3, axis=2).astype(np.uint8)).convert("RGBA")
    base.alpha_composite(rgba.convert("RGBA"))
    return base.convert("RGB")


def edge_closeup(board: Image.Image, made: images.Portrait, size: int = 384) -> Image.Image:
    """A 3x view of the hair/shoulder edge beside the (first chosen) face, where halos
    show."""
    if made.face_bbox:
        x0, y0, x1, y1 = made.face_bbox
        side = max(x1 - x0, y1 - y0)
        cx, cy = x0 - 0.1 * side, y0 + (y1 - y0) * 0.25
    else:
        x0, y0, x1, y1 = made.bbox
        side = (x1 - x0) // 3
        cx, cy = x0, y0 + side
    half = max(int(side * 0.35), 16)
    box = (int(max(cx - half, 0)), int(max(cy - half, 0)),
           int(min(cx + half, board.width)), int(min(cy + half, board.height)))
    return board.crop(box).resize((size, size), Image.Resampling.LANCZOS)


def build(chain: Callable[[str], FallbackChain[Any]], record: Recorder) -> None:
    """The tab over the engines it runs (``chain(capability)``) and the job record of each
    action (``record``: :func:`app.ui.work.recorder`)."""
    framing = images.choices()
    gr.Markdown(t("image.intro"))
    with gr.Row():
        with gr.Column(scale=1):
            photo = gr.Image(label=t("image.photo"), type="filepath", sources=["upload"],
                             elem_id="image-photo")
            sensitivity = gr.Slider(0.1, 0.9, value=images.DEFAULT_SENSITIVITY, step=0.05,
                                    label=t("image.sensitivity"))
            detect_btn = gr.Button(t("image.detect"), variant="secondary",
                                   elem_id="image-detect")
            gallery = gr.Gallery(label=t("image.people"), columns=4, height=180,
                                 allow_preview=False, elem_id="image-people")
            selected = gr.CheckboxGroup(label=t("image.selected"), choices=[],
                                        info=t("image.several"), elem_id="image-selected")
            with gr.Accordion(t("image.people_data"), open=False):
                people_json = gr.JSON(label=t("image.people_data"),
                                      elem_classes=["studio-data"])
            refine = gr.Checkbox(value=True, label=t("image.refine"))
        with gr.Column(scale=1):
            aspect = gr.Radio(list(framing.aspects), value="1:1", label=t("image.aspect"))
            size = gr.Slider(256, 2048, value=512, step=32, label=t("image.size"))
            padding = gr.Slider(0, 500, value=0, step=4, label=t("image.padding"))
            background = gr.Radio([(t(f"bg.{kind}"), kind) for kind in framing.background_kinds],
                                  value="transparent", label=t("image.background"))
            color = gr.ColorPicker(value="#ffffff", label=t("image.color"))
            ids = [str(e["id"]) for e in framing.backgrounds]
            builtin = gr.Dropdown([(t(f"bg.builtin.{i}"), i) for i in ids],
                                  value=ids[0] if ids else None, label=t("image.builtin"))
            bg_upload = gr.Image(label=t("image.bg_upload"), type="filepath",
                                 sources=["upload"])
            cutout_btn = gr.Button(t("image.cutout"), variant="primary", elem_id="image-cutout")
    refuse_at_upload(photo)  # a file that is not a picture: said now, no broken preview
    refuse_at_upload(bg_upload)
    with gr.Row():
        original = gr.Image(label=t("image.original"), interactive=False)
        board = gr.Image(label=t("image.checker"), interactive=False)
        closeup = gr.Image(label=t("image.closeup"), interactive=False)
    with gr.Row():
        framed = gr.Image(label=t("image.framed"), interactive=False, image_mode="RGBA",
                          format="png", elem_id="image-framed")
        with gr.Column():
            download = gr.File(label=t("image.download"), interactive=False)
            with gr.Accordion(t("image.engines"), open=False):
                engines = gr.JSON(label=t("image.engines"), elem_id="image-engines",
                                  elem_classes=["studio-data"])

    def detect_people(path: str | None, sens: float,
                      request: gr.Request | None = None) -> tuple[Any, ...]:
        lang = request_language(request)
        image = _load(path, lang)
        try:
            with record("image.detect", {"sensitivity": sens}, request):
                found = images.detect_people(image, chain("person_detection"), sens)
        except StudioError as exc:
            raise studio_error(exc, lang) from None
        names = [f"#{p['id']} ({p['confidence']:.2f})" for p in found.people]
        thumbs = list(zip(found.thumbnails, names, strict=True))
        choices = [(name, p["id"]) for name, p in zip(names, found.people, strict=True)]
        return (thumbs, found.people, gr.update(choices=choices, value=[found.people[0]["id"]]))

    def pick(evt: gr.SelectData, people: list[dict[str, Any]] | None) -> list[int]:
        """A click on a thumbnail chooses that person alone (ticking boxes is how several
        are chosen)."""
        people = people or []
        index = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
        return [people[index]["id"]] if 0 <= index < len(people) else []

    def cutout(path: str | None, sens: float, chosen: list[int] | None, do_refine: bool,
               asp: str, sz: float, pad: float, bg: str, col: str, bg_id: str | None,
               bg_path: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        lang = request_language(request)
        image = _load(path, lang)
        bg_image = _load(bg_path, lang) if bg == "upload" and bg_path else None
        people = [int(c) for c in chosen or []] or None
        try:
            options = images.framing_options({
                "aspect": asp, "size": int(sz), "padding": int(pad), "background": bg,
                "background_color": col or "#ffffff", "background_id": bg_id,
                "background_image": bg_image})
            with record("image.cutout", {"people": people, "background": bg, "aspect": asp},
                        request):
                made = images.make_portrait(
                    image, detectors=chain("person_detection"), cutouts=chain("cutout"),
                    refiners=chain("refiner") if do_refine else None,
                    framing=options, person_ids=people, sensitivity=sens)
        except StudioError as exc:
            raise studio_error(exc, lang) from None
        shown = checkerboard(made.cutout)
        out = Path(tempfile.mkdtemp(prefix="studio-image-")) / "portrait.png"
        made.framed.save(out)
        return (image, shown, edge_closeup(shown, made), made.framed, str(out), made.reports)

    detect_btn.click(detect_people, [photo, sensitivity], [gallery, people_json, selected],
                     api_name="detect_people")
    gallery.select(pick, [people_json], [selected], api_visibility="private")
    cutout_btn.click(cutout, [photo, sensitivity, selected, refine, aspect, size, padding,
                              background, color, builtin, bg_upload],
                     [original, board, closeup, framed, download, engines],
                     api_name="cutout")
