"""Start the studio: build the app, start the embedded queue workers, serve on localhost."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
import webbrowser
from pathlib import Path

from app.config import SettingsError, load_settings, warn_unknown_variables


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="launch.py",
        description="Video Message Studio: UI at http://HOST:PORT/, REST API under /api, "
                    "OpenAPI at /docs. Flags override STUDIO_* environment variables.",
    )
    parser.add_argument("--host", help="interface to bind (STUDIO_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (STUDIO_PORT, default 7860)")
    parser.add_argument("--data-dir", type=Path,
                        help="where artifacts, jobs and the queue live (STUDIO_DATA_DIR, ./data)")
    parser.add_argument("--workers", type=int,
                        help="in-process worker threads; 0 = external huey_consumer only "
                             "(STUDIO_WORKERS, default 2)")
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open a browser tab once the studio is up")
    return parser.parse_args(argv)


def on_desktop() -> bool:
    """Open a browser only for a person at a desktop: never in CI, a Space or a container."""
    if os.environ.get("CI") or os.environ.get("SPACE_ID") or not sys.stdout.isatty():
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _warm_voice(services: object, log: logging.Logger) -> None:
    """Background, at the lowest priority: the voice-matching calibration cache and the
    speaker encoder, so the first voice profile is as quick as the next (read from disk
    after the first start)."""
    from pipelines.voice.jobs import warm_up

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # this thread only
    except (AttributeError, OSError):
        pass
    try:
        count = warm_up(services.chain, services.engine_settings.cache_dir)  # type: ignore[attr-defined]
        log.info("voice matching calibration ready", extra={"voices": count})
    except Exception:  # a warm-up failure must not stop the studio
        log.exception("voice matching warm-up failed; the first profile will do it")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {k: v for k, v in {
        "host": args.host, "port": args.port, "data_dir": args.data_dir,
        "workers": args.workers,
    }.items() if v is not None}
    if os.environ.get("SPACE_ID"):
        if "host" not in overrides and not os.environ.get("STUDIO_HOST"):
            overrides["host"] = "0.0.0.0"  # a Space routes to 0.0.0.0:7860
        if not os.environ.get("STUDIO_ALLOW_DOWNLOADS"):
            overrides["allow_downloads"] = True  # a Space may fetch weights from the Hub
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2

    import uvicorn

    from app.logs import setup_logging
    from app.main import create_app
    from app.services import build_services

    setup_logging(settings.log_level, settings.log_format)
    log = logging.getLogger("studio")
    warn_unknown_variables()
    services = build_services(settings)
    app = create_app(services)
    if services.storage.name == "local":
        swept = services.storage.sweep_temp()  # type: ignore[attr-defined]
        if swept:  # half-written files of a killed process: never listed, now gone
            log.info("removed %d temp files of a stopped process", len(swept),
                     extra={"files": swept[:20]})
    if services.storage.name == "s3":
        storage_ok, storage_info = services.storage.health()
        if not storage_ok:  # e.g. the bucket is missing: say what to run, keep serving
            log.warning("storage not ready: %s", storage_info)
    if settings.workers > 0:
        # stages a killed studio left running are taken back now, not when leases expire
        services.queue.recover()
    services.queue.start_consumer(settings.workers)  # main thread: huey sets signal handlers
    if settings.workers > 0:
        threading.Thread(target=_warm_voice, args=(services, log), daemon=True,
                         name="voice-warm-up").start()

    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None,
                            timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    url = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}" \
          f":{settings.port}/"

    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            log.info("studio ready at %s", url, extra={"url": url})
            if settings.open_browser and not args.no_browser and on_desktop():
                webbrowser.open(url)

    threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()
    finally:
        services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
