"""How a process logs: IMAGEGATE_LOG_FORMAT=text (human lines) or json (one object per line,
with request_id and task_id), for uvicorn's loggers and ours alike."""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from imagegate.config import Settings
from imagegate.logs import ContextIds, RedactUrls

TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, task_id, and the
    exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "task_id": getattr(record, "task_id", None),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextWithIds(logging.Formatter):
    """The text format, with ``task=`` and ``request=`` appended when the line has them."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = [
            f"{name}={value}"
            for name, value in (("task", getattr(record, "task_id", None)),
                                ("request", getattr(record, "request_id", None)))
            if value
        ]  # fmt: skip
        return f"{text} [{' '.join(ids)}]" if ids else text


def logging_config(settings: Settings) -> dict[str, Any]:
    """A logging.config dictConfig: uvicorn's loggers and the root logger through one handler."""
    json_lines = settings.log_format == "json"
    formatter = {"()": JsonLines} if json_lines else {"()": TextWithIds, "fmt": TEXT}
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
               "formatter": "line", "filters": ["ids", "redact"]}  # fmt: skip
    quiet = {"handlers": ["line"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"ids": {"()": ContextIds}, "redact": {"()": RedactUrls}},
        "formatters": {"line": formatter},
        "handlers": {"line": handler},
        "loggers": {
            "uvicorn": quiet,
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": quiet,
            # httpx writes every URL it calls at INFO: callback URLs may hold the receiver's
            # token, upstream image URLs their signature.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },  # fmt: skip
        "root": {"handlers": ["line"], "level": "INFO"},
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
