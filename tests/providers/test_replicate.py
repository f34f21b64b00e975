"""The Replicate adapter against a loopback server speaking Replicate's predictions API."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from PIL import Image

from harness import wait_for
from imagegate.config import Settings
from imagegate.providers.base import BAD_IMAGE, SAFETY_REJECTED, UNAVAILABLE
from receiver import running_receiver
from upstream_fakes import (
    REPLICATE_TOKEN,
    FakeReplicate,
    calls_at_least,
    running,
    server_for,
    sleeping_until,
    upstream_settings,
)


def creates(fake: FakeReplicate) -> list[Any]:
    return [call for call in fake.calls if call.path.endswith("/predictions")]


async def test_a_task_is_generated_by_replicate_and_rehosted_as_jpeg(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(FakeReplicate()) as fake:
        async with server_for(upstream_settings(settings, replicate=fake), fake) as server:
            account = await server.account(credits=100)

            task = await server.run(account, prompt="A neon sign", size="9:16")

            assert task["status"] == "completed", task
            assert task["output"]["metadata"] == {"model": "ideogram-ai/ideogram-v4"}
            [url] = task["output"]["urls"]
            assert url.startswith(server.base_url + "/images/")
            image = Image.open(io.BytesIO((await server.http.get(url)).content))
            assert (image.format, image.size) == ("JPEG", (1440, 2560))
            [call] = fake.calls
            assert call.path == "/v1/models/ideogram-ai/ideogram-v4/predictions"
            assert call.headers["authorization"] == f"Bearer {REPLICATE_TOKEN}"
            assert call.headers["prefer"].startswith("wait=")
            assert call.body == {
                "input": {
                    "prompt": "A neon sign",
                    "resolution": "1440x2560",
                    "rendering_speed": "Default",
                }
            }
            assert await server.ledger(account) == (72, 72)
    assert REPLICATE_TOKEN not in caplog.text


async def test_a_slow_prediction_is_polled_until_it_succeeds(settings: Settings) -> None:
    async with running(FakeReplicate(["async"])) as fake:
        async with server_for(upstream_settings(settings, replicate=fake), fake) as server:
            account = await server.account()

            task = await server.run(account, output_format="png")

            assert task["status"] == "completed"
            polls = [call for call in fake.calls if "/v1/predictions/" in call.path]
            assert len(polls) >= 2
            assert all(c.headers["authorization"] == f"Bearer {REPLICATE_TOKEN}" for c in polls)


async def test_a_model_per_speed_is_addressed_by_its_slug(settings: Settings) -> None:
    async with running(FakeReplicate()) as fake:
        configured = upstream_settings(
            settings, replicate=fake, replicate_model="ideogram-ai/ideogram-v4-{speed}"
        )
        async with server_for(configured, fake) as server:
            account = await server.account()

            await server.run(account, rendering_speed="QUALITY")

            [call] = fake.calls
            assert call.path == "/v1/models/ideogram-ai/ideogram-v4-quality/predictions"
            assert "rendering_speed" not in call.body["input"]


async def test_a_content_filter_failure_fails_the_task_at_once(settings: Settings) -> None:
    async with running(FakeReplicate(["safety"])) as fake:
        async with server_for(upstream_settings(settings, replicate=fake), fake) as server:
            account = await server.account(credits=100)

            task = await server.run(account)

            assert task["error"] == {"code": "upstream_error", "message": SAFETY_REJECTED}
            assert len(creates(fake)) == 1
            assert await server.ledger(account) == (100, 100)


async def test_429_is_retried_after_the_retry_after_it_names(settings: Settings) -> None:
    async with running(FakeReplicate(["429:20"])) as fake:
        async with server_for(upstream_settings(settings, replicate=fake), fake) as server:
            account = await server.account()
            task_id = (await server.create(account)).json()["data"]["taskId"]

            await wait_for(lambda: calls_at_least(fake, 1))
            [wake_at] = await wait_for(lambda: sleeping_until(server))
            assert wake_at - fake.calls[0].at >= 20, "the retry does not wait for Retry-After"
            server.clock.advance(20)
            task = await server.wait_final(account, task_id)

            assert task["status"] == "completed"
            first, second = creates(fake)
            assert second.at - first.at >= 20


@pytest.mark.parametrize("script", [["500"], ["502", "failed"], ["malformed"]])
async def test_transient_failures_are_retried_until_one_succeeds(
    settings: Settings, script: list[str]
) -> None:
    async with running(FakeReplicate(script)) as fake:
        async with server_for(upstream_settings(settings, replicate=fake), fake) as server:
            account = await server.account()

            task = await server.run(account)

            assert task["status"] == "completed"
            assert len(creates(fake)) == len(script) + 1


async def test_a_prediction_past_the_deadline_is_canceled_and_the_task_fails(
    settings: Settings,
) -> None:
    async with running(FakeReplicate(["stuck"])) as fake:
        configured = upstream_settings(
            settings, replicate=fake, upstream_retries=0, upstream_deadline=300
        )
        async with server_for(configured, fake) as server:
            account = await server.account(credits=100)
            task_id = (await server.create(account)).json()["data"]["taskId"]

            await wait_for(lambda: calls_at_least(fake, 3))  # created, then polled
            server.clock.advance(301)
            task = await server.wait_final(account, task_id)

            assert task["error"] == {"code": "upstream_error", "message": UNAVAILABLE}
            assert any(call.path.endswith("/cancel") for call in fake.calls)
            assert await server.ledger(account) == (100, 100)


@pytest.mark.parametrize(
    ("answer", "message", "calls"),
    [("hang", UNAVAILABLE, 3), ("expired", UNAVAILABLE, 3), ("oversized", BAD_IMAGE, 1)],
)
async def test_failures_end_as_a_failed_task_with_a_refund(
    settings: Settings, answer: str, message: str, calls: int
) -> None:
    overrides = {"upstream_timeout": 0.3, "upstream_image_max_bytes": 1024 * 1024}
    async with running(FakeReplicate([answer] * 3)) as fake:
        async with server_for(
            upstream_settings(settings, replicate=fake, **overrides), fake
        ) as server:
            account = await server.account(credits=100)

            task = await server.run(account, size="1:1")

            assert task["error"] == {"code": "upstream_error", "message": message}
            assert len(creates(fake)) == calls
            assert await server.ledger(account) == (100, 100)


async def test_the_token_is_never_sent_to_a_poll_url_on_another_host(
    settings: Settings,
) -> None:
    async with running(FakeReplicate(["async"])) as fake, running_receiver() as elsewhere:
        fake.foreign_poll_url = elsewhere.url
        async with server_for(upstream_settings(settings, replicate=fake), fake) as server:
            account = await server.account()

            task = await server.run(account)

            assert task["status"] == "completed"
            assert elsewhere.received == []
            assert any(c.path.startswith("/v1/predictions/") for c in fake.calls)
