"""The Ideogram adapter against a loopback server speaking Ideogram's API, through imagegate."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from PIL import Image

from harness import Server, wait_for
from imagegate.config import Settings
from imagegate.providers.base import BAD_IMAGE, SAFETY_REJECTED, UNAVAILABLE
from upstream_fakes import (
    IDEOGRAM_KEY,
    FakeIdeogram,
    calls_at_least,
    running,
    server_for,
    sleeping_until,
    upstream_settings,
)

POSTER = 'A retro concert poster with bold headline text "SUMMER NIGHTS"'


async def fetch_image(server: Server, task: dict[str, Any]) -> Image.Image:
    [url] = task["output"]["urls"]
    assert url.startswith(server.base_url + "/images/"), "re-hosted on our storage"
    response = await server.http.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.content))


async def test_a_task_is_generated_by_ideogram_and_rehosted_as_jpeg(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(FakeIdeogram()) as fake:
        async with server_for(upstream_settings(settings, ideogram=fake), fake) as server:
            account = await server.account(credits=100)

            task = await server.run(account, prompt=POSTER, size="16:9")

            assert task["status"] == "completed", task
            assert task["output"]["metadata"] == {"model": "ideogram-ai/ideogram-v4"}
            image = await fetch_image(server, task)
            # Ideogram answered with a PNG; output_format was omitted, so the client gets JPEG.
            assert (image.format, image.size, image.mode) == ("JPEG", (2560, 1440), "RGB")
            call = fake.calls[0]
            assert call.path == "/v1/ideogram-v4/generate"
            assert call.headers["api-key"] == IDEOGRAM_KEY
            assert call.body == {
                "text_prompt": POSTER,
                "resolution": "2560x1440",
                "rendering_speed": "DEFAULT",  # BALANCED is Ideogram's DEFAULT
            }
            assert await server.ledger(account) == (100 - 28, 100 - 28)
    assert IDEOGRAM_KEY not in caplog.text


async def test_png_requested_is_delivered_as_the_upstream_png(settings: Settings) -> None:
    async with running(FakeIdeogram()) as fake:
        async with server_for(upstream_settings(settings, ideogram=fake), fake) as server:
            account = await server.account()

            task = await server.run(
                account, size="3:4", rendering_speed="TURBO", output_format="png"
            )

            image = await fetch_image(server, task)
            assert (image.format, image.size) == ("PNG", (1728, 2304))
            assert fake.calls[0].body["rendering_speed"] == "TURBO"


@pytest.mark.parametrize("answer", ["safety", "unsafe"])
async def test_a_safety_rejection_fails_the_task_at_once_and_refunds(
    settings: Settings, answer: str
) -> None:
    async with running(FakeIdeogram([answer])) as fake:
        async with server_for(upstream_settings(settings, ideogram=fake), fake) as server:
            account = await server.account(credits=100)

            task = await server.run(account, prompt="something prohibited")

            assert task["status"] == "failed"
            assert task["error"] == {"code": "upstream_error", "message": SAFETY_REJECTED}
            assert len(fake.calls) == 1, "a rejection is not retried"
            assert await server.ledger(account) == (100, 100)


async def test_429_is_retried_after_the_retry_after_it_names(settings: Settings) -> None:
    async with running(FakeIdeogram(["429:30"])) as fake:
        async with server_for(upstream_settings(settings, ideogram=fake), fake) as server:
            account = await server.account()
            response = await server.create(account)
            task_id = response.json()["data"]["taskId"]

            await wait_for(lambda: calls_at_least(fake, 1))
            [wake_at] = await wait_for(lambda: sleeping_until(server))
            assert wake_at - fake.calls[0].at >= 30, "the retry does not wait for Retry-After"
            server.clock.advance(30)
            task = await server.wait_final(account, task_id)

            assert task["status"] == "completed"
            first, second = fake.calls[0], fake.calls[1]
            assert second.at - first.at >= 30, "the retry came before Retry-After had passed"


async def test_server_errors_are_retried_until_one_succeeds(settings: Settings) -> None:
    async with running(FakeIdeogram(["500", "502"])) as fake:
        async with server_for(upstream_settings(settings, ideogram=fake), fake) as server:
            account = await server.account()

            task = await server.run(account)

            assert task["status"] == "completed"
            assert len(fake.calls) == 3


@pytest.mark.parametrize(
    ("answer", "message", "calls"),
    [
        ("hang", UNAVAILABLE, 3),  # timed out each time: 1 attempt + 2 retries
        ("malformed", UNAVAILABLE, 3),
        ("expired", UNAVAILABLE, 3),  # a new generation gets a new URL: retried
        ("oversized", BAD_IMAGE, 1),  # an unusable image is not asked for again
    ],
)
async def test_failures_end_as_a_failed_task_with_a_refund(
    settings: Settings, answer: str, message: str, calls: int
) -> None:
    overrides = {"upstream_timeout": 0.3, "upstream_image_max_pixels": 4_000_000}
    async with running(FakeIdeogram([answer] * 3)) as fake:
        async with server_for(
            upstream_settings(settings, ideogram=fake, **overrides), fake
        ) as server:
            account = await server.account(credits=100)

            task = await server.run(account, size="1:1")

            assert task["status"] == "failed"
            assert task["error"] == {"code": "upstream_error", "message": message}
            generate_calls = [c for c in fake.calls if c.path.endswith("/generate")]
            assert len(generate_calls) == calls
            assert await server.ledger(account) == (100, 100)


async def test_an_image_over_the_byte_cap_is_refused(settings: Settings) -> None:
    async with running(FakeIdeogram(["oversized"])) as fake:
        capped = upstream_settings(settings, ideogram=fake, upstream_image_max_bytes=1024 * 1024)
        async with server_for(capped, fake) as server:
            account = await server.account()

            task = await server.run(account)

            assert task["error"]["message"] == BAD_IMAGE


@pytest.mark.parametrize("script", [["malformed"], ["minimal"]])
async def test_a_malformed_answer_is_retried_and_a_minimal_one_is_enough(
    settings: Settings, script: list[str]
) -> None:
    async with running(FakeIdeogram(script)) as fake:
        async with server_for(upstream_settings(settings, ideogram=fake), fake) as server:
            account = await server.account()

            task = await server.run(account)

            assert task["status"] == "completed"


async def test_a_wrong_key_fails_without_showing_any_key(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(FakeIdeogram()) as fake:
        wrong = upstream_settings(settings, ideogram=fake)
        wrong.ideogram_api_key = type(wrong.ideogram_api_key)("ideo-wrong-key-000")
        async with server_for(wrong, fake) as server:
            account = await server.account(credits=100)

            task = await server.run(account)

            assert task["error"] == {"code": "upstream_error", "message": UNAVAILABLE}
            assert len(fake.calls) == 1, "bad credentials are not retried"
            assert await server.ledger(account) == (100, 100)
    assert "ideo-wrong-key-000" not in caplog.text
    assert "ideo-wrong-key-000" not in str(task)
