"""verify_callback on a callback that a real imagegate server delivered to a real receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator

import pytest

from harness import Server, running_server
from imagegate.config import Settings
from imagegate_client import AsyncClient, WebhookVerificationError, verify_callback
from receiver import Received, running_receiver


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    async with running_server(settings.model_copy(update={"callback_allow_private": True})) as s:
        yield s


@pytest.fixture
async def delivered(server: Server) -> AsyncIterator[tuple[Received, str]]:
    """A callback as received, and the secret of the account it is for."""
    account = await server.account()
    async with (
        AsyncClient(base_url=server.base_url, api_key=account.key) as client,
        running_receiver() as receiver,
    ):
        await client.generate("a poster", callback_url=receiver.url)
        (received,) = await receiver.count(1)
        yield received, await client.webhook_secret()


@pytest.mark.parametrize("prompt", ["a poster", "a poster [simulate:upstream_error]"])
async def test_a_delivered_callback_verifies_to_the_task(server: Server, prompt: str) -> None:
    account = await server.account()
    async with (
        AsyncClient(base_url=server.base_url, api_key=account.key) as client,
        running_receiver() as receiver,
    ):
        task_id = await client.create(prompt, callback_url=receiver.url)
        (received,) = await receiver.count(1)
        task = verify_callback(received.body, received.headers, await client.webhook_secret())
        assert task == await client.get(task_id)
        assert task.finished
        # str bodies and mixed-case header names work too
        mixed = {name.title(): value for name, value in received.headers.items()}
        assert verify_callback(received.body.decode(), mixed, await client.webhook_secret()) == task


def test_what_does_not_verify(delivered: tuple[Received, str]) -> None:
    received, secret = delivered
    body, headers = received.body, received.headers
    signed_at = int(headers["webhook-timestamp"])
    cases = {
        "no signature matches": (body.replace(b'"status"', b'"Status"'), headers, secret),
        "missing header webhook-signature": (
            body, {k: v for k, v in headers.items() if k != "webhook-signature"}, secret
        ),
        "not a whsec_ base64 key": (body, headers, "whsec_***"),
    }  # fmt: skip
    for message, (bad_body, bad_headers, bad_secret) in cases.items():
        with pytest.raises(WebhookVerificationError, match=message):
            verify_callback(bad_body, bad_headers, bad_secret)
    other = "whsec_" + base64.b64encode(b"0" * 32).decode()
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify_callback(body, headers, other)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_callback(body, headers, secret, now=signed_at + 301)
    with pytest.raises(WebhookVerificationError, match="future"):
        verify_callback(body, headers, secret, now=signed_at - 301)
    assert verify_callback(body, headers, secret, now=signed_at + 299).finished


def test_any_valid_v1_signature_passes_during_secret_rotation(
    delivered: tuple[Received, str],
) -> None:
    received, secret = delivered
    headers = dict(received.headers)
    old_key = b"previous secret key material...."
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + received.body
    old = base64.b64encode(hmac.new(old_key, content, hashlib.sha256).digest()).decode()
    headers["webhook-signature"] = f"v1,{old} v2,ignored {headers['webhook-signature']}"
    assert verify_callback(received.body, headers, secret).finished
    old_secret = "whsec_" + base64.b64encode(old_key).decode()
    assert verify_callback(received.body, headers, old_secret).finished
