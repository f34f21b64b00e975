"""Every error class of the SDK: from a real imagegate server where it can produce the error,
from a scripted server with the reference's wire format where it cannot (yet)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness import free_port
from imagegate.config import Settings
from imagegate.keys.policy import PolicyChange
from imagegate_client import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    Client,
    ImagegateError,
    InsufficientCreditsError,
    InternalServerError,
    InvalidRequestError,
    IpNotAllowedError,
    ModelNotFoundError,
    NotFoundError,
    RateLimitError,
    SpendLimitError,
    TaskNotFoundError,
    UpstreamError,
)
from sdk_support import TASK, Live, Reply, WireServer, error_reply, live_server


def expect(error: type[APIError], status: int, code: str, kind: str, call: Any) -> APIError:
    with pytest.raises(error) as raised:
        call()
    assert (raised.value.status_code, raised.value.code, raised.value.type) == (status, code, kind)
    assert raised.value.message
    assert raised.value.response.status_code == status
    assert str(raised.value) == f"{code}: {raised.value.message}"
    return raised.value


def sdk(live: Live, policy: PolicyChange | None = None, credits: int = 1000) -> Client:
    return Client(base_url=live.base_url, api_key=live.account(credits, policy).key)


def test_invalid_request(client: Client) -> None:
    bad: Any = "2:1"
    error = expect(
        InvalidRequestError, 400, "invalid_request", "invalid_request_error",
        lambda: client.create("a cat", size=bad),
    )  # fmt: skip
    assert "'input.size' must be one of" in error.message
    expect(
        InvalidRequestError, 400, "invalid_request", "invalid_request_error",
        lambda: client.create(""),
    )  # fmt: skip


def test_authentication(live: Live) -> None:
    with Client(base_url=live.base_url, api_key="sk-not-a-key") as client:
        expect(AuthenticationError, 401, "invalid_api_key", "authentication_error", client.credits)


def test_insufficient_credits(live: Live) -> None:
    with sdk(live, credits=10) as client:
        expect(
            InsufficientCreditsError, 402, "insufficient_credits", "billing_error",
            lambda: client.generate("a cat"),
        )  # fmt: skip


def test_ip_not_allowed(live: Live) -> None:
    with sdk(live, PolicyChange(allow_ips=["10.0.0.0/8"])) as client:
        expect(IpNotAllowedError, 403, "ip_not_allowed", "permission_error", client.credits)


def test_model_and_task_not_found(client: Client) -> None:
    for error, code, call in [
        (ModelNotFoundError, "model_not_found", lambda: client.create("a", model="nope")),
        (TaskNotFoundError, "task_not_found", lambda: client.get("no-such-task")),
        (TaskNotFoundError, "task_not_found", lambda: client.wait("no-such-task")),
    ]:
        assert issubclass(error, NotFoundError)
        expect(error, 404, code, "invalid_request_error", call)


def test_rate_limit_carries_retry_after_and_a_long_one_is_not_slept_through(live: Live) -> None:
    with sdk(live, PolicyChange(rate_limit="1")) as client:
        assert client.credits().credits == 1000
        started = time.monotonic()
        error = expect(
            RateLimitError, 429, "rate_limit_exceeded", "rate_limit_error", client.credits
        )
        # The window is a minute: Retry-After is beyond what a retry sleeps through, so the
        # error comes at once (default max_retries=2), with the server's Retry-After.
        assert time.monotonic() - started < 5
        assert error.retry_after is not None
        assert 1 <= error.retry_after <= 60
        assert error.retry_after == float(error.response.headers["retry-after"])


def test_spend_limit(live: Live) -> None:
    with sdk(live, PolicyChange(total_limit="20")) as client:
        client.create("a cat", rendering_speed="TURBO")
        expect(
            SpendLimitError, 429, "spend_limit_exceeded", "billing_error",
            lambda: client.create("a cat", rendering_speed="TURBO"),
        )  # fmt: skip


def test_upstream_unavailable_at_creation(settings: Settings) -> None:
    # Ideogram is the only route and has no key: no provider can take the task.
    no_provider = settings.model_copy(update={"routes": {"ideogram-v4": ["ideogram"]}})
    with live_server(no_provider) as live, sdk(live) as client:
        error = expect(
            UpstreamError, 503, "upstream_error", "upstream_error",
            lambda: client.generate("a cat"),
        )  # fmt: skip
        assert "nothing was charged" in error.message
        assert client.credits().credits == 1000


# imagegate answers 500 internal_error only on a bug; a scripted server with the same wire format
# stands in for it, and for codes and statuses imagegate never sends.
@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        (error_reply(500, "internal_error", "api_error"), InternalServerError, "internal_error"),
        (error_reply(503, "upstream_error", "upstream_error"), UpstreamError, "upstream_error"),
        (error_reply(404, "gone_fishing", "invalid_request_error"), NotFoundError, "gone_fishing"),
        (error_reply(429, "slow_down", "rate_limit_error"), RateLimitError, "slow_down"),
        (error_reply(502, "bad_gateway", "api_error"), InternalServerError, "bad_gateway"),
        (error_reply(418, "teapot", "odd_error"), APIError, "teapot"),
        # A known code under another status: the status decides.
        (
            error_reply(400, "task_not_found", "invalid_request_error"),
            InvalidRequestError,
            "task_not_found",
        ),
    ],  # fmt: skip
)
def test_server_errors_and_unknown_codes_map_by_status(
    reply: Reply, error: type[APIError], code: str
) -> None:
    with WireServer([reply]) as wire:  # not retried, to see each error once
        with Client(base_url=wire.base_url, api_key="sk-x", max_retries=0) as client:
            with pytest.raises(error) as raised:
                client.create("a cat")
    assert type(raised.value) is error
    assert raised.value.code == code
    assert raised.value.message == f"scripted {code}"
    assert len(wire.seen) == 1


def test_an_error_body_that_is_not_the_envelope() -> None:
    page = Reply(502, b"<html><body>Bad Gateway</body></html>\n", {"Content-Type": "text/html"})
    with WireServer([page]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x", max_retries=0) as client:
            with pytest.raises(InternalServerError) as raised:
                client.credits()
    assert raised.value.code is None
    assert raised.value.status_code == 502
    assert str(raised.value) == "HTTP 502: <html><body>Bad Gateway</body></html>"


def test_a_success_the_sdk_cannot_read() -> None:
    replies = [Reply(200, b"<html>welcome to the proxy</html>"), Reply(200, b'{"id": "t1"}')]
    with WireServer(replies) as wire, Client(base_url=wire.base_url, api_key="sk-x") as client:
        for _ in replies:
            with pytest.raises(ImagegateError, match="unreadable response from http://127"):
                client.get("t1")


def test_no_server_is_a_connection_error() -> None:
    with Client(base_url=f"http://127.0.0.1:{free_port()}", api_key="sk-x") as client:
        with pytest.raises(APIConnectionError) as raised:
            client.create("a cat")
    assert not isinstance(raised.value, APIError)
    assert isinstance(raised.value, ImagegateError)


def test_a_server_that_does_not_answer_in_time_is_a_timeout() -> None:
    with WireServer([Reply(200, TASK, delay=2.0)]) as wire:
        with Client(base_url=wire.base_url, api_key="sk-x", timeout=0.2, max_retries=0) as client:
            with pytest.raises(APITimeoutError):
                client.get("t1")
