"""Replicate polling through 429s and 5xx: the prediction goes on upstream, so a poll that is
refused is waited out (Retry-After, else backoff) and asked again, never re-created.

upstream_fakes.FakeReplicate answers every poll with the prediction; FlakyPolls, below, is the
same loopback fake with its first polls answered from a script instead.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from harness import wait_for
from imagegate.clock import Clock
from imagegate.config import Settings
from imagegate.providers.base import UNAVAILABLE, GenerationRequest, ProviderError
from imagegate.providers.rehost import Rehoster
from imagegate.providers.replicate import ReplicateProvider
from upstream_fakes import (
    REPLICATE_TOKEN,
    Call,
    FakeReplicate,
    running,
    server_for,
    upstream_settings,
)

POLL_INTERVAL = 1.0
REQUEST = GenerationRequest(
    task_id="t-1", prompt="a lighthouse", size="1:1", width=1024, height=1024,
    rendering_speed="TURBO", output_format="png",
)  # fmt: skip


class FlakyPolls(FakeReplicate):
    """A FakeReplicate whose prediction needs polling ("async") and whose first polls are
    answered from ``polls``: "429:N" or "503:N" (Retry-After: N seconds), "503@N" (Retry-After:
    the HTTP date N seconds from now, on the fake's clock), "503" or "500" (no Retry-After)."""

    def __init__(self, polls: list[str]) -> None:
        super().__init__(["async"])
        self.polls = list(polls)
        self.answered: list[tuple[Call, int]] = []  # (poll, status) of every poll

    async def get(self, request: Request) -> Response:
        if not self.polls:
            response = await super().get(request)
            self.answered.append((self.calls[-1], response.status_code))
            return response
        call = await self.record(request)
        answer = self.polls.pop(0)
        status, seconds = int(answer[:3]), answer[4:]
        headers = {}
        if answer[3:4] == ":":
            headers["Retry-After"] = seconds
        elif answer[3:4] == "@":
            when = self.clock.now() + float(seconds)
            headers["Retry-After"] = email.utils.formatdate(when, usegmt=True)
        self.answered.append((call, status))
        return JSONResponse({"detail": "slow down"}, status, headers)

    def polls_answered(self) -> list[tuple[float, int]]:
        return [(call.at, status) for call, status in self.answered]


class SteppingClock(Clock):
    """Time that moves only by the code's own sleeps, which return at once; it starts far from
    the real time, so a wait computed from time.time() instead of the clock shows."""

    def __init__(self) -> None:
        self.time = time.time() + 10 * 86400.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += max(seconds, 0.0)
        await asyncio.sleep(0)


async def generate(fake: FlakyPolls, clock: SteppingClock, deadline: float = 300.0) -> list[Any]:
    fake.clock = clock
    async with httpx.AsyncClient(timeout=10) as http:
        provider = ReplicateProvider(
            http, Rehoster(http, 64 * 1024 * 1024, 5_000_000, 10.0), clock,
            api_token=REPLICATE_TOKEN, base_url=fake.base_url,
            model="ideogram-ai/ideogram-v4", poll_interval=POLL_INTERVAL,
            deadline=deadline, wait=1,
        )  # fmt: skip
        return await provider.generate(REQUEST)


def creates(fake: FakeReplicate) -> list[Call]:
    return [call for call in fake.calls if call.path.endswith("/predictions")]


async def test_polling_waits_out_a_429_and_5xx_then_completes() -> None:
    clock = SteppingClock()
    async with running(FlakyPolls(["429:7", "503", "500"])) as fake:
        images = await generate(fake, clock)

    assert [image.output_format for image in images] == ["png"]
    assert len(creates(fake)) == 1, "the prediction is polled again, never re-created"
    first, after_429, after_503, after_500, reset = clock.sleeps
    assert first == POLL_INTERVAL
    assert after_429 == 7.0, "Retry-After: 7 is waited for, exactly"
    # The 2nd and 3rd refusals in a row back off exponentially from the poll interval.
    assert 1.6 * POLL_INTERVAL <= after_503 <= 2.4 * POLL_INTERVAL
    assert 3.2 * POLL_INTERVAL <= after_500 <= 4.8 * POLL_INTERVAL
    assert reset == POLL_INTERVAL, "an answered poll resets the backoff"
    polls = fake.polls_answered()
    assert [status for _, status in polls] == [429, 503, 500, 200, 200]
    gaps = [b - a for (a, _), (b, _) in zip(polls, polls[1:], strict=False)]
    assert gaps == pytest.approx([7.0, after_503, after_500, POLL_INTERVAL])


async def test_a_retry_after_date_is_read_on_the_code_clock() -> None:
    clock = SteppingClock()
    async with running(FlakyPolls(["503@40"])) as fake:
        images = await generate(fake, clock)

    assert len(images) == 1
    assert 39.0 < clock.sleeps[1] <= 40.0  # the date has whole seconds


async def test_a_retry_after_of_zero_never_polls_faster_than_the_interval() -> None:
    clock = SteppingClock()
    async with running(FlakyPolls(["503:0", "429:0"])) as fake:
        await generate(fake, clock)

    assert all(wait >= POLL_INTERVAL for wait in clock.sleeps), clock.sleeps


async def test_a_retry_after_past_the_deadline_is_not_overslept() -> None:
    clock = SteppingClock()
    async with running(FlakyPolls(["429:3600"])) as fake:
        with pytest.raises(ProviderError) as failure:
            await generate(fake, clock, deadline=30.0)

    assert failure.value.message == UNAVAILABLE
    assert clock.sleeps == [POLL_INTERVAL, 30.0 - POLL_INTERVAL], "woken at the deadline"
    assert fake.calls[-1].path.endswith("/cancel"), "then the prediction is canceled"


async def test_a_task_survives_a_429_and_a_503_while_polling(settings: Settings) -> None:
    async with running(FlakyPolls(["429:7", "503"])) as fake:
        async with server_for(upstream_settings(settings, replicate=fake), fake) as server:
            account = await server.account(credits=100)
            task_id = (await server.create(account)).json()["data"]["taskId"]

            [(limited_at, _)] = await wait_for(lambda: refused(fake))
            [wake_at] = await wait_for(lambda: sleeping_past(server, limited_at + 1))
            assert 7 <= wake_at - limited_at < 8, "the wait is the Retry-After"
            await asyncio.sleep(0.2)
            assert len(fake.answered) == 1, "no poll before Retry-After has passed"
            server.clock.advance(7)
            task = await server.wait_final(account, task_id)

            assert task["status"] == "completed", task
            polls = fake.polls_answered()
            assert [status for _, status in polls][:3] == [429, 503, 200]
            assert polls[1][0] - polls[0][0] >= 7
            assert len(creates(fake)) == 1
            assert await server.ledger(account) == (100 - 28, 100 - 28), "charged once"


async def refused(fake: FlakyPolls) -> list[tuple[float, int]]:
    return [(at, status) for at, status in fake.polls_answered() if status == 429]


async def sleeping_past(server: Any, moment: float) -> list[float]:
    return [deadline for deadline in server.clock.sleeping_until if deadline > moment]
