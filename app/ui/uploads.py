"""Readable upload errors on every tab: a file that is not a picture or not audio gets the
REST API's ``IMAGE_*`` / ``*_AUDIO_*`` error, in the page's language, never Gradio's
"Could not preprocess input component ... /tmp/gradio/..." with server paths.

Gradio decodes an ``Image`` upload in the component's ``preprocess``, before any handler
runs, and wraps what fails there in a ``ComponentProcessingError`` that quotes the file's
server path. :class:`StudioBlocks` catches that one error and asks the studio's own decoder
(``pipelines.media``) what is wrong with the upload. Audio inputs are checked the same way
before Gradio reads them: only whether the file is audio at all (each tab keeps its own
size and length limits). The page's language comes from the request, which Gradio hands to
``process_api`` but not to ``preprocess_data``; a context variable carries it between them.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import gradio as gr
from gradio.exceptions import ComponentProcessingError
from gradio.utils import get_upload_folder

from app.ui.sessions import GuardedFiles, file_paths, foreign_inputs
from app.ui.text import plain, register, request_language, studio_error, ui_error
from models.errors import StudioError
from pipelines.media import LIMITS, decode_audio, decode_image

_REQUEST: contextvars.ContextVar[Any] = contextvars.ContextVar("studio_ui_request",
                                                                default=None)
# Only "is it audio at all": the tabs' handlers apply their own size and length limits.
_ANY_LENGTH = dataclasses.replace(LIMITS, audio_max_bytes=2**40, audio_max_seconds=1e9)
# The REST area whose codes an event's audio errors carry (VOICE_SAMPLE_AUDIO_INVALID, ...:
# a profile clip's is the one its job would give).
AUDIO_AREAS = {"create_profile": "VOICE_SAMPLE", "check_clips": "VOICE_SAMPLE", "adjust_prosody": "PROSODY",
               "mix_bgm": "BGM", "generate_video": "VIDEO", "go": "VIDEO"}
register(en={"upload.unreadable_image": "This upload could not be read as an image.",
             "upload.not_yours": "A file given to this call belongs to another user."},
         ja={"upload.unreadable_image": "アップロードされたファイルを画像として読めません。",
             "upload.not_yours": "この操作に渡されたファイルは別のユーザーのものです。"})


def _uploaded_path(value: Any) -> Path | None:
    """The server file behind an upload payload, if it lies in Gradio's upload folder (a
    client names the path; only files Gradio itself received are read)."""
    if isinstance(value, dict) and isinstance(value.get("value"), dict):
        value = value["value"]
    path = value.get("path") if isinstance(value, dict) else None
    if not isinstance(path, str) or not path:
        return None
    try:
        resolved = Path(path).resolve()
        resolved.relative_to(Path(get_upload_folder()).resolve())
    except (OSError, ValueError):
        return None
    return resolved if resolved.is_file() else None


def _display_name(value: Any, path: Path) -> str:
    if isinstance(value, dict):
        name = value.get("orig_name") or (value.get("value") or {}).get("orig_name")
        if isinstance(name, str) and name:
            return Path(name).name
    return path.name


def _uploads(block_fn: Any, inputs: list[Any], component: type[gr.components.Component]
             ) -> Iterator[tuple[Any, Path]]:
    """The event's uploaded files for inputs of one component type: (payload, server path)."""
    for block, value in zip(block_fn.inputs, inputs, strict=False):
        if isinstance(block, component):
            path = _uploaded_path(value)
            if path is not None:
                yield value, path


def check_audio_uploads(block_fn: Any, inputs: list[Any], lang: str) -> None:
    """Refuse an Audio input that is not audio, with the REST code of the event's area."""
    area = AUDIO_AREAS.get(str(block_fn.api_name or ""), "VALIDATION")
    for value, path in _uploads(block_fn, inputs, gr.Audio):
        try:
            decode_audio(path.read_bytes(), area=area, filename=_display_name(value, path),
                         limits=_ANY_LENGTH, target_rate=None)
        except StudioError as exc:
            raise studio_error(exc, lang) from None


def explain_failed_image(block_fn: Any, inputs: list[Any], lang: str) -> gr.Error | None:
    """The studio's own verdict on the image upload Gradio could not read (None when every
    image input decodes, so the failure lies elsewhere)."""
    for value, path in _uploads(block_fn, inputs, gr.Image):
        try:
            decode_image(path.read_bytes(), filename=_display_name(value, path))
        except StudioError as exc:
            return studio_error(exc, lang)
        return ui_error(f"{plain('upload.unreadable_image', lang)} (IMAGE_INVALID_FORMAT)", lang)
    return None


def check_image_upload(image: Any, request: gr.Request | None = None) -> None:
    """A picture just added, checked at once: a file that is not a picture gets the REST
    API's ``IMAGE_*`` error in the page's language. (A ``pil`` input never gets here with
    one: its preprocess fails first and :class:`StudioBlocks` says the same.)"""
    if not isinstance(image, str) or not image:
        return
    try:
        decode_image(Path(image).read_bytes(), filename=Path(image).name)
    except StudioError as exc:
        raise studio_error(exc, request_language(request)) from None


def _no_image() -> None:
    return None


def refuse_at_upload(image: gr.Image,
                     check: Callable[..., None] = check_image_upload) -> None:
    """Say what is wrong with an upload as soon as it is added, and take the refused file out
    of the component: a text file named .jpg left a broken-image preview that looked taken."""
    image.upload(check, image, None, show_progress="hidden", api_visibility="private").failure(
        _no_image, None, image, queue=False, show_progress="hidden", api_visibility="private")


class StudioBlocks(GuardedFiles, gr.Blocks):
    """``gr.Blocks`` whose upload failures read like the REST API's, and whose files belong
    to the user whose call made them (``file_owners``, set when the login is on: see
    :mod:`app.ui.sessions`)."""

    async def process_api(self, *args: Any, **kwargs: Any) -> Any:
        request = kwargs.get("request")
        owners = self.file_owners
        caller = request[0] if isinstance(request, list) and request else request  # batch
        user = getattr(caller, "username", None)
        if owners is not None and user is not None and not self.file_admin(user):
            inputs = args[1] if len(args) > 1 else kwargs.get("inputs")
            if foreign_inputs(owners, user, inputs):
                lang = request_language(caller)
                raise ui_error(f"{plain('upload.not_yours', lang)} (AUTH_FORBIDDEN)", lang)
        token = _REQUEST.set(request)
        try:
            result = await super().process_api(*args, **kwargs)
        finally:
            _REQUEST.reset(token)
        if owners is not None and user is not None and isinstance(result, dict):
            for path in file_paths(result.get("data")):
                owners.add(path, user)  # outputs are the caller's (and admins')
        return result

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], state: Any,
                              explicit_call: bool = False) -> Any:
        request = _REQUEST.get()
        lang = request_language(request[0] if isinstance(request, list) and request
                                else request)
        await anyio.to_thread.run_sync(check_audio_uploads, block_fn, inputs, lang)
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except ComponentProcessingError:
            error = await anyio.to_thread.run_sync(explain_failed_image, block_fn, inputs, lang)
            if error is None:
                raise
            raise error from None
