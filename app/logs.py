"""JSON-lines logging, with the request id of the request being served.

Each line: timestamp, level, service, version, request_id, event, duration_ms, metadata.
In a terminal, a short human-readable line instead (``STUDIO_LOG_FORMAT=auto``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

from app.config import SERVICE_NAME, VERSION

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        line: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": SERVICE_NAME,
            "version": VERSION,
            "request_id": extra.pop("request_id", None) or request_id_var.get(),
            "logger": record.name,
            "event": record.getMessage(),
            "duration_ms": extra.pop("duration_ms", None),
            "metadata": extra,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        rid = extra.pop("request_id", None) or request_id_var.get()
        tail = " ".join(f"{k}={v}" for k, v in extra.items())
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        text = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if rid:
            text += f" [{rid[:12]}]"
        if tail:
            text += f" {tail}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class TaskFields(logging.Filter):
    """huey names a task by its own id ("Executing studio.run_stage: 5f3e..."); a person
    looks for a job and a stage. Lines about one of the studio's tasks get ``job_id`` (and
    ``stage``) fields from the task's arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            name, task_args = getattr(arg, "name", None), getattr(arg, "args", None)
            if isinstance(name, str) and name.startswith("studio.") and task_args:
                if not hasattr(record, "job_id"):
                    record.job_id = task_args[0]
                if name == "studio.run_stage" and len(task_args) > 1 \
                        and not hasattr(record, "stage"):
                    record.stage = task_args[1]
                break
        return True


def setup_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """One handler on the root logger; every line goes out once, in one format."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TaskFields())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access", "botocore", "urllib3", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
