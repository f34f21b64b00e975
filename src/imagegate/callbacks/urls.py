"""The form every URL we will call back must have: a task's callback_url and an account's webhook
URL alike. Light on imports, so the admin commands and the console can check one cheaply."""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_CALLBACK_URL_CHARS = 2048


def check_http_url(value: str) -> str:
    """``value`` if it is an absolute http(s) URL of at most MAX_CALLBACK_URL_CHARS characters,
    with a host, a valid port and no credentials; else ValueError naming the problem:
    ``too_long``, ``credentials`` or ``not_url``."""
    if len(value) > MAX_CALLBACK_URL_CHARS:
        raise ValueError("too_long")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in value):
        raise ValueError("not_url")  # control characters and spaces have no place in a URL
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not_url")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in 0..65535
    except ValueError:
        raise ValueError("not_url") from None
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials")
    return value
