"""verify_callback: check a callback's Standard Webhooks signature (https://www.standardwebhooks.com)
with the standard library alone.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is the base64 of
its HMAC-SHA256 under the secret (``whsec_`` + base64 key), sent as ``v1,<signature>`` in the
``webhook-signature`` header (several, space-separated, while a secret is being rotated).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from imagegate_client._exceptions import WebhookVerificationError
from imagegate_client._models import Task

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE = 300  # seconds a timestamp may differ from now, either way (replay window)


def verify_callback(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Task:
    """The task a callback carries, once its signature checks out; WebhookVerificationError
    if a header is missing, the timestamp is outside ``tolerance`` seconds of ``now``, or no
    signature matches ``secret`` (the account's ``whsec_...``, see Client.webhook_secret).

    Pass the raw body exactly as received: re-encoded JSON does not verify. ``headers`` may be
    any mapping (case-insensitive ones such as Starlette's and Flask's included).
    """
    raw = body.encode() if isinstance(body, str) else body
    message_id, timestamp, signatures = _signature_headers(headers)
    _check_timestamp(timestamp, time.time() if now is None else now, tolerance)
    content = message_id.encode() + b"." + timestamp.encode() + b"." + raw
    expected = base64.b64encode(hmac.new(_key(secret), content, hashlib.sha256).digest())
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise WebhookVerificationError("no signature matches the secret")
    try:
        return Task.model_validate_json(raw)
    except ValueError as exc:
        raise WebhookVerificationError(f"signed, but not a task object: {exc}") from None


def _signature_headers(headers: Mapping[str, str]) -> tuple[str, str, list[bytes]]:
    lower = {name.lower(): value for name, value in headers.items()}
    try:
        message_id = lower["webhook-id"]
        timestamp = lower["webhook-timestamp"]
        signature = lower["webhook-signature"]
    except KeyError as exc:
        raise WebhookVerificationError(f"missing header {exc.args[0]}") from None
    versioned = (part.partition(",") for part in signature.split())
    signatures = [value.encode() for version, _, value in versioned if version == "v1"]
    return message_id, timestamp, signatures


def _check_timestamp(timestamp: str, now: float, tolerance: float) -> None:
    try:
        signed_at = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    if signed_at < now - tolerance:
        raise WebhookVerificationError("the callback is too old")
    if signed_at > now + tolerance:
        raise WebhookVerificationError("the callback is timestamped in the future")


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the secret is not a whsec_ base64 key") from None
