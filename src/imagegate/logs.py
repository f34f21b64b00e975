"""Keeping secrets out of logs: one-time console links carry their token in the URL, and the
access log (uvicorn's) would otherwise write it down."""

from __future__ import annotations

import logging
import re

_SECRET_IN_URL = re.compile(r"(/console/set-password/|[?&]invite=)[A-Za-z0-9_\-]+")


def redact(text: str) -> str:
    return _SECRET_IN_URL.sub(r"\1[redacted]", text)


class RedactUrls(logging.Filter):
    """Masks one-time link tokens in the arguments and message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact_access_log() -> None:
    """Install the filter on uvicorn's access and error loggers (once)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactUrls) for f in logger.filters):
            logger.addFilter(RedactUrls())
