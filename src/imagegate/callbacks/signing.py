"""Standard Webhooks signatures (https://www.standardwebhooks.com) with a per-account secret."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def event_id(task_id: str) -> str:
    """The webhook-id of a task's end event: the same for every attempt, so receivers dedupe."""
    return f"msg_{task_id}"


def signature_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    signed_at = datetime.fromtimestamp(timestamp, tz=UTC)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": Webhook(secret).sign(message_id, signed_at, body.decode()),
    }
