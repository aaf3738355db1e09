"""Gradio Blocks: one module per tab, mounted on the FastAPI app at ``/``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import gradio as gr

from app.services import Services
from app.ui import bgm, cache_files, engines, image, jobs, message, prosody, video, voice
from app.ui import models as models_panel
from app.ui.message import MessageDesk
from app.ui.owners import UiAccess, UiState, login_on
from app.ui.text import (
    build_i18n,
    plain,
    register,
    request_language,
    t,
    tabs_css,
    toast_css,
    word,
)
from app.ui.uploads import StudioBlocks
from app.ui.voice_profiles import VoiceDesk
from app.ui.work import Recorder, recorder
from app.usecases.messages import delete_message, submit_message
from app.usecases.voices import Voices

register(en={"app.logout": "Log out"}, ja={"app.logout": "ログアウト"})

def ui_access(services: Services) -> UiAccess:
    """Who is asking and what they may see: the login's settings and sessions."""
    return UiAccess(services.settings, services.ui)


def records(services: Services) -> Recorder:
    """The job records of the work a tab does in the request."""
    return recorder(services.jobs, ui_access(services))


def voice_desk(services: Services) -> VoiceDesk:
    """The Voice tab's parts; the voice use cases bound once (the services cache the
    VoiceKit they run)."""
    return VoiceDesk(Voices(services), services.jobs, services.queue, ui_access(services),
                     records(services))


def message_desk(services: Services) -> MessageDesk:
    """The Message tab's parts; submitting and deleting a message bound once (a submission
    checks its voice against the VoiceKit the services cache)."""
    return MessageDesk(services.storage, services.jobs, services.queue, ui_access(services),
                       Voices(services), partial(submit_message, services),
                       partial(delete_message, services))


def jobs_desk(services: Services) -> jobs.JobsDesk:
    """The Jobs tab's parts: the job store, the queue, the sessions its admin check reads."""
    return jobs.JobsDesk(services.jobs, services.queue, services.ui)


# Each tab is built from the parts it uses, never from the whole Services.
TABS: tuple[tuple[str, Callable[[Services], None]], ...] = (
    ("tab.message", lambda s: message.build(message_desk(s))),
    ("tab.voice", lambda s: voice.build(voice_desk(s))),
    ("tab.image", lambda s: image.build(s.chain, records(s))),
    ("tab.prosody", lambda s: prosody.build(s.storage, ui_access(s), records(s))),
    ("tab.bgm", lambda s: bgm.build(s.storage, ui_access(s), records(s))),
    ("tab.video", lambda s: video.build(s.chain, s.settings, records(s))),
    ("tab.jobs", lambda s: jobs.build(jobs_desk(s))),
)

CSS = """
.studio-footer {opacity: .7; font-size: .85em; text-align: center}
/* thumbnails stay thumbnails: Gradio's grid stretches one or two items to the full width */
#message-gallery .grid-container, #image-people .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(130px, 170px)) !important;
}
#message-gallery .thumbnail-item, #image-people .thumbnail-item {aspect-ratio: 1 / 1}
#message-gallery .caption-label {white-space: normal; max-width: 100%; font-size: .8em}
/* room above an output's note, so an error badge never covers it */
.studio-note {min-height: 2.5em; padding-top: .4em}
/* the bar under Generate: room for its step, time left and bar without a scrollbar */
#message-progress {min-height: 4.8em; overflow: visible}
/* a dropdown's choice is never cut under its own arrow: beside a checkbox or a radio it
   takes a row of its own as soon as the row is narrow (a phone) */
#message-music-row .form, #voice-voice-row .form {flex-wrap: wrap}
#message-bgm, #message-voice {min-width: min(100%, 260px) !important}
#voice-voice {min-width: min(100%, 300px) !important}
/* tables keep ids, times and words whole (one character per line at 390 px) and scroll
   sideways inside their frame instead */
.table-wrap th, .table-wrap th * {word-break: keep-all !important; overflow-wrap: normal !important}
/* the serving table under a new profile: no word broken inside itself ("lan / gu / age"),
   each figure ("0.50 → 0.76") on one line; a narrow screen scrolls the table, not the page */
#voice-profile-result table {display: block; max-width: 100%; overflow-x: auto}
#voice-profile-result th, #voice-profile-result td {word-break: normal !important;
  overflow-wrap: normal !important; hyphens: manual; padding: .45em .55em !important}
#voice-profile-result td:nth-child(n+4) {white-space: nowrap}
""" + toast_css() + tabs_css()


def footer_text(services: Services, lang: str = "en", show_data_dir: bool = False) -> str:
    """The version and storage line; the server's data folder only when ``show_data_dir``
    (:func:`sees_data_dir`): a path on a public page tells strangers about the server."""
    data = (f" · {plain('footer.data', lang)}: `{services.settings.data_dir.resolve()}`"
            if show_data_dir else "")
    return (f"{plain('app.name', lang)} {services.version}{data} · "
            f"{plain('footer.storage', lang)}: {word('storage.', services.storage.name, lang)}")


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def sees_data_dir(services: UiState, request: gr.Request | None) -> bool:
    """An admin (with the login on), or someone on this very machine: the page asked for
    as localhost by a loopback client, with the login off (behind a proxy or on a Space the
    Host is the public name, so nobody there sees it)."""
    if request is None:
        return False
    if services.ui.is_admin is not None:
        return services.ui.is_admin(request)
    client = getattr(getattr(request, "client", None), "host", None)
    host = str((getattr(request, "headers", None) or {}).get("host", ""))
    name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    return client in LOOPBACK and name in LOOPBACK


def build_blocks(services: Services) -> gr.Blocks:
    cache_files.install()
    demo = StudioBlocks(title="Video Message Studio")
    with demo:
        gr.Markdown(t("app.title"), elem_id="studio-title")
        gr.Markdown(t("app.subtitle"))
        if login_on(services):  # Gradio's /logout ends this user's sessions
            gr.Button(t("app.logout"), link="/logout", size="sm", variant="secondary",
                      elem_id="studio-logout", scale=0)
        with gr.Tabs():
            for label, build_tab in TABS:
                with gr.Tab(t(label), id=label.split(".")[1]):
                    build_tab(services)
        engines.build(services.inventory)
        models_panel.build(services.settings.engine_settings,
                           partial(jobs.is_admin, jobs_desk(services)))
        footer = gr.Markdown(footer_text(services), elem_classes=["studio-footer"])

        def localized_footer(request: gr.Request) -> str:
            return footer_text(services, request_language(request),
                               sees_data_dir(services, request))

        demo.load(localized_footer, None, footer, api_visibility="private",
                  show_progress="hidden")
    return demo


__all__ = ["CSS", "build_blocks", "build_i18n", "jobs_desk", "message_desk", "records",
           "ui_access", "voice_desk"]
