"""IP allowlists, rate limits, spend limits, expiry and model allowlists, in documented order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select, update

from harness import Account, Server, running_server
from imagegate.config import Settings
from imagegate.db.models import ApiKey, LedgerEntry
from imagegate.keys.policy import PolicyChange


def error_of(response: Any) -> tuple[int, str, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["type"]


FORBIDDEN = (403, "ip_not_allowed", "permission_error")
RATE = (429, "rate_limit_exceeded", "rate_limit_error")
SPEND = (429, "spend_limit_exceeded", "billing_error")


async def test_ip_allowlist(server: Server) -> None:
    outside = await server.account(policy=PolicyChange(allow_ips=["10.0.0.0/8", "2001:db8::/32"]))
    inside = await server.account(policy=PolicyChange(allow_ips=["10.0.0.0/8", "127.0.0.1"]))
    refused = await server.http.get("/v1/credits", headers=outside.headers)
    assert error_of(refused) == FORBIDDEN
    assert "127.0.0.1" in refused.json()["error"]["message"]
    assert (await server.create(outside)).status_code == 403
    assert (await server.http.get("/v1/credits", headers=inside.headers)).status_code == 200


@pytest.fixture
async def behind_proxy(settings: Settings) -> AsyncIterator[Server]:
    trusted = settings.model_copy(update={"trusted_proxies": ("127.0.0.1", "10.0.0.0/8")})
    async with running_server(trusted) as server:
        yield server


async def test_x_forwarded_for_is_read_right_to_left_past_trusted_proxies(
    behind_proxy: Server,
) -> None:
    server = behind_proxy
    account = await server.account(policy=PolicyChange(allow_ips=["203.0.113.0/24"]))

    async def status(forwarded: str | None) -> int:
        headers = {**account.headers, **({"X-Forwarded-For": forwarded} if forwarded else {})}
        return (await server.http.get("/v1/credits", headers=headers)).status_code

    assert await status(None) == 403  # the proxy itself is not the client
    assert await status("203.0.113.9") == 200
    assert await status("203.0.113.9, 10.1.1.1") == 200  # past a second trusted hop
    assert await status("203.0.113.9, 198.51.100.7") == 403  # the first untrusted hop decides
    assert await status("198.51.100.7, 203.0.113.9") == 200  # client-supplied left part ignored
    assert await status("garbage, 203.0.113.9") == 200
    assert await status("203.0.113.9:5555") == 200  # some proxies write the client's port
    assert await status("203.0.113.9, garbage") == 403  # unreadable where a proxy wrote: refuse
    # A proxy may add its hop as a header line of its own after the client's line.
    two_lines = [*account.headers.items(), ("X-Forwarded-For", "203.0.113.9")]
    two_lines.append(("X-Forwarded-For", "198.51.100.7"))
    assert (await server.http.get("/v1/credits", headers=two_lines)).status_code == 403


async def test_a_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored(server: Server) -> None:
    account = await server.account(policy=PolicyChange(allow_ips=["203.0.113.0/24"]))
    spoofed = {**account.headers, "X-Forwarded-For": "203.0.113.9"}
    assert error_of(await server.http.get("/v1/credits", headers=spoofed)) == FORBIDDEN


async def test_rate_limit_headers_and_429_with_retry_after(server: Server) -> None:
    account = await server.account(policy=PolicyChange(rate_limit="3"))
    for remaining in (2, 1, 0):
        response = await server.http.get("/v1/credits", headers=account.headers)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "3"
        assert response.headers["x-ratelimit-remaining"] == str(remaining)
        assert int(response.headers["x-ratelimit-reset"]) >= int(server.clock.now())
    refused = await server.http.get("/v1/credits", headers=account.headers)
    assert error_of(refused) == RATE
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining"] == "0"
    other = await server.account(policy=PolicyChange(rate_limit="3"))  # limits are per key
    assert (await server.http.get("/v1/credits", headers=other.headers)).status_code == 200


async def test_the_operator_default_rate_limit_applies_to_keys_without_their_own(
    settings: Settings,
) -> None:
    async with running_server(settings.model_copy(update={"rate_limit_per_minute": 2})) as server:
        account = await server.account()
        statuses = [
            (await server.http.get("/v1/credits", headers=account.headers)).status_code
            for _ in range(3)
        ]
    assert statuses == [200, 200, 429]


async def spend_error(server: Server, account: Account, **fields: Any) -> str:
    response = await server.create(account, **fields)
    assert error_of(response) == SPEND
    message: str = response.json()["error"]["message"]
    return message


async def test_hourly_limit_frees_up_as_the_window_rolls(server: Server) -> None:
    account = await server.account(policy=PolicyChange(hourly_limit="56"))
    for _ in range(2):
        assert (await server.create(account)).status_code == 200
        server.clock.advance(600)
    message = await spend_error(server, account)
    assert message.startswith("Hourly spend limit reached: this key may spend 56 credits")
    assert "has spent 56" in message
    assert "in 2400 s" in message or "in 2401 s" in message  # the first charge ages out then
    assert await server.ledger(account) == (1000 - 56, 1000 - 56)
    server.clock.advance(2401)
    assert (await server.create(account)).status_code == 200


async def test_daily_and_total_limits(server: Server) -> None:
    daily = await server.account(policy=PolicyChange(daily_limit="32"))
    assert (await server.create(daily, rendering_speed="TURBO")).status_code == 200
    assert (await server.create(daily, rendering_speed="TURBO")).status_code == 200
    assert "per rolling day" in await spend_error(server, daily, rendering_speed="TURBO")
    server.clock.advance(86401)
    assert (await server.create(daily, rendering_speed="TURBO")).status_code == 200

    tiny = await server.account(policy=PolicyChange(total_limit="10"))
    assert "this task alone costs 16" in await spend_error(server, tiny, rendering_speed="TURBO")

    total = await server.account(policy=PolicyChange(total_limit="20"))
    assert (await server.create(total, rendering_speed="TURBO")).status_code == 200
    server.clock.advance(10 * 86400)
    message = await spend_error(server, total, rendering_speed="TURBO")
    assert "in total and has spent 16" in message


async def test_a_refund_frees_spend_limit_room(server: Server) -> None:
    account = await server.account(policy=PolicyChange(hourly_limit="28"))
    failing = await server.create(account, prompt="[simulate:upstream_error]")
    assert (await server.wait_final(account, failing.json()["data"]["taskId"]))[
        "status"
    ] == "failed"
    assert (await server.create(account)).status_code == 200
    await spend_error(server, account)


async def test_parallel_creates_never_exceed_the_hourly_limit(server: Server) -> None:
    account = await server.account(credits=10_000, policy=PolicyChange(hourly_limit="160"))
    responses = await asyncio.gather(
        *[server.create(account, rendering_speed="TURBO") for _ in range(40)]
    )
    assert sorted(r.status_code for r in responses) == [200] * 10 + [429] * 30
    assert {error_of(r) for r in responses if r.status_code == 429} == {SPEND}
    async with server.services.db.sessions() as session:
        charges = await session.scalar(
            select(func.count()).where(
                LedgerEntry.key_id == account.key_id, LedgerEntry.kind == "charge"
            )
        )
    assert charges == 10
    assert await server.ledger(account) == (10_000 - 160, 10_000 - 160)


async def test_expired_keys_are_refused(server: Server) -> None:
    soon = await server.account(policy=PolicyChange(expires="2099-01-01T00:00:00Z"))
    assert (await server.http.get("/v1/credits", headers=soon.headers)).status_code == 200
    past = await server.account(policy=PolicyChange(expires="2020-01-01T00:00:00"))
    response = await server.http.get("/v1/credits", headers=past.headers)
    assert error_of(response) == (401, "invalid_api_key", "authentication_error")
    assert response.json()["error"]["message"] == "This API key has expired."


async def test_a_model_outside_the_keys_allowlist_is_not_found(server: Server) -> None:
    allowed = await server.account(policy=PolicyChange(models=["ideogram-v4"]))
    assert (await server.create(allowed)).status_code == 200
    elsewhere = await server.account()
    async with server.services.db.transaction() as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == elsewhere.key_id).values(models=["another-model"])
        )
    response = await server.create(elsewhere)
    assert error_of(response) == (404, "model_not_found", "invalid_request_error")


async def test_checks_run_in_the_documented_order(server: Server) -> None:
    """key (401) -> IP (403) -> rate (429) -> body (400) -> model (404) -> spend (429) ->
    balance (402): each request below fails several checks and gets the first one's error."""
    bad_body = {"model": "nope", "input": {"prompt": ""}}

    async def post(account: Account | None, body: dict[str, Any]) -> tuple[int, str, str]:
        headers = account.headers if account else {"Authorization": "Bearer sk-unknown"}
        return error_of(
            await server.http.post("/v1/images/generations", json=body, headers=headers)
        )

    walled = await server.account(policy=PolicyChange(allow_ips=["10.0.0.0/8"], rate_limit="1"))
    assert await post(None, bad_body) == (401, "invalid_api_key", "authentication_error")
    assert await post(walled, bad_body) == FORBIDDEN
    assert await post(walled, bad_body) == FORBIDDEN  # refused before it counts against the rate
    limited = await server.account(credits=0, policy=PolicyChange(rate_limit="1", hourly_limit="1"))
    assert await post(limited, bad_body) == (400, "invalid_request", "invalid_request_error")
    assert await post(limited, bad_body) == RATE
    poor = await server.account(credits=0, policy=PolicyChange(hourly_limit="1"))
    assert await post(poor, {"model": "nope", "input": {"prompt": "x"}}) == (
        404, "model_not_found", "invalid_request_error"
    )  # fmt: skip
    assert await post(poor, {"model": "ideogram-v4", "input": {"prompt": "x"}}) == SPEND
    broke = await server.account(credits=0)
    assert await post(broke, {"model": "ideogram-v4", "input": {"prompt": "x"}}) == (
        402, "insufficient_credits", "billing_error"
    )  # fmt: skip
