"""``create_app``: wires services into routers, middleware, error handlers and the UI.

It only wires; services are built by the caller (``launch.py``, a test fixture, a worker).
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from app.api import bgm, files, health, image, jobs, message, prosody, video, voice
from app.api.envelope import error_body
from app.api.errors import install_error_handlers
from app.api.limits import RequestLimitsMiddleware
from app.api.middleware import RequestContextMiddleware
from app.api.security import AuthMiddleware
from app.config import SERVICE_NAME, VERSION
from app.i18n import pick_language
from app.metrics import Metrics
from app.services import Services
from app.usecases.messages import delete_message, submit_message
from app.usecases.voices import Voices


def _not_found_router() -> APIRouter:
    """Answers unknown ``/api/...`` routes in the envelope before Gradio (mounted at ``/``)
    can answer them with its bare ``{"detail": "Not Found"}``."""
    router = APIRouter(include_in_schema=False)

    @router.api_route("/api/{rest:path}",
                      methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    def api_not_found(rest: str, request: Request) -> JSONResponse:
        lang = pick_language(request.headers.get("accept-language"))
        message = (f"API ルート /api/{rest} はありません。" if lang == "ja"
                   else f"No API route /api/{rest}.")
        return JSONResponse(error_body("NOT_FOUND", message, {"path": f"/api/{rest}"}),
                            status_code=404)

    return router


def create_app(services: Services, *, with_ui: bool = True) -> FastAPI:
    app = FastAPI(
        title="Video Message Studio", version=VERSION,
        description="Photo + words -> talking video message. REST API; the UI lives at /.",
    )
    metrics = Metrics()
    app.state.services = services
    app.state.metrics = metrics
    install_error_handlers(app)
    settings = services.settings
    # One limiter for both doors: REST's expensive routes and the Gradio API's (app.ui.gate).
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=int(settings.max_body_mb * 2**20),
                       limiter=services.rate_limiter)
    app.add_middleware(AuthMiddleware, settings=settings)  # before limits: per-user limits
    app.add_middleware(RequestContextMiddleware, metrics=metrics)  # outermost

    app.include_router(health.create_router(services, metrics))
    storage, queue = services.storage, services.queue
    app.include_router(jobs.create_router(storage, services.jobs, queue))
    app.include_router(files.create_router(storage))
    # each router gets the parts it uses (a chain, the store, the queue, a use case)
    app.include_router(voice.create_router(Voices(services)))
    app.include_router(image.create_router(storage, services.jobs, queue,
                                           partial(services.chain, "person_detection")))
    app.include_router(prosody.create_router(storage))
    app.include_router(bgm.create_router(storage))
    app.include_router(video.create_router(
        storage, services.jobs, queue, settings, services.fetcher,
        message.multipart_handler(partial(submit_message, services))))
    app.include_router(message.create_router(storage, services.jobs,
                                             partial(delete_message, services)))
    app.include_router(_not_found_router())

    if with_ui:
        import gradio as gr

        from app.ui import CSS, build_blocks, build_i18n, gate, sessions
        from app.ui.owners import is_ui_admin
        from app.ui.text import page_head

        blocks = build_blocks(services)
        gate.install(blocks, services)
        blocks.queue(default_concurrency_limit=2, max_size=settings.max_queued)
        tokens = sessions.SessionTokens(settings.ui_session_minutes * 60.0)
        login = gate.make_login(services, tokens)
        if login is not None:
            services.ui.is_admin = lambda request: is_ui_admin(services, request)
        app = gr.mount_gradio_app(
            app, blocks, path="/", i18n=build_i18n(), css=CSS, head=page_head(),
            footer_links=["api"],
            show_error=True, auth=login, auth_message=gate.AUTH_MESSAGE,
        )
        if login is not None:
            sessions.guard(app, blocks, tokens,
                           lambda user: is_ui_admin(services, SimpleNamespace(username=user)))
        app.state.blocks = blocks
    app.state.service_name = SERVICE_NAME
    return app
