"""POST /openai/v1/images/generations and GET /openai/v1/models, driven by OpenAI's own Python
SDK (`openai`), as every tool built on it would: images come back, each is a charged task of the
task API, and failures raise the SDK's exception classes."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from PIL import Image

import openai
from harness import Account, HeldProvider, Server, held_server, running_server, wait_for
from imagegate.config import Settings
from imagegate.keys.policy import PolicyChange


@asynccontextmanager
async def sdk(server: Server, key: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """OpenAI's client on imagegate, by base URL and key only (no retries: each call is seen)."""
    client = openai.AsyncOpenAI(base_url=f"{server.base_url}/openai/v1", api_key=key, max_retries=0)
    async with client:
        yield client


def picture(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_a_url_answer_is_a_real_image_of_the_nearest_preset(settings: Settings) -> None:
    async with running_server(settings) as server:
        account = await server.account(credits=100)
        async with sdk(server, account.key) as client:
            answer = await client.images.generate(
                model="ideogram-v4", prompt='a poster that says "OPEN"', size="1792x1024"
            )
        [image] = answer.data
        assert image.revised_prompt == 'a poster that says "OPEN"'
        assert image.url is not None
        assert image.url.startswith(f"{server.base_url}/images/")
        fetched = await server.http.get(image.url)
        assert fetched.headers["content-type"] == "image/png"  # OpenAI's default format
        assert picture(fetched.content).size == (1280, 720)  # 16:9
        assert await server.ledger(account) == (100 - 28, 100 - 28)  # standard: BALANCED


async def test_b64_json_n_2_and_hd_charge_two_quality_images(settings: Settings) -> None:
    async with running_server(settings) as server:
        account = await server.account(credits=100)
        async with sdk(server, account.key) as client:
            answer = await client.images.generate(
                model="ideogram-v4", prompt="two lighthouses", n=2, size="1024x1024",
                quality="hd", response_format="b64_json",
            )  # fmt: skip
        assert len(answer.data) == 2
        for image in answer.data:
            assert image.url is None
            assert image.b64_json is not None
            decoded = picture(base64.b64decode(image.b64_json))
            assert (decoded.format, decoded.size) == ("PNG", (1024, 1024))
        assert await server.ledger(account) == (100 - 2 * 44, 100 - 2 * 44)


async def test_a_failed_generation_raises_the_sdk_error_and_is_refunded(
    settings: Settings,
) -> None:
    async with running_server(settings) as server:
        account = await server.account(credits=100)
        async with sdk(server, account.key) as client:
            with pytest.raises(openai.InternalServerError) as failed:
                await client.images.generate(
                    model="ideogram-v4", prompt="[simulate:upstream_error] a cat"
                )
        assert failed.value.status_code == 500
        assert failed.value.response.headers["x-should-retry"] == "false"
        assert failed.value.body == {
            "message": "Image generation failed", "type": "server_error", "param": None,
            "code": "upstream_error",
        }  # fmt: skip
        assert await server.ledger(account) == (100, 100)


async def test_keys_limits_and_models_raise_the_sdk_classes(settings: Settings) -> None:
    async with running_server(settings) as server:
        limited = await server.account(credits=1000, policy=PolicyChange(hourly_limit="28"))
        async with sdk(server, "sk-not-a-key") as client:
            with pytest.raises(openai.AuthenticationError) as unknown_key:
                await client.images.generate(model="ideogram-v4", prompt="a cat")
        assert unknown_key.value.code == "invalid_api_key"
        async with sdk(server, limited.key) as client:
            await client.images.generate(model="ideogram-v4", prompt="a cat")
            with pytest.raises(openai.RateLimitError) as spent:
                await client.images.generate(model="ideogram-v4", prompt="a cat")
            assert spent.value.code == "spend_limit_exceeded"
            with pytest.raises(openai.NotFoundError) as missing:
                await client.images.generate(model="dall-e-3", prompt="a cat")
            assert missing.value.code == "model_not_found"
            with pytest.raises(openai.BadRequestError) as blank:
                await client.images.generate(model="ideogram-v4", prompt="   ")
            assert blank.value.body["param"] == "prompt"  # type: ignore[index]
            listed = await client.models.list()
        assert [model.id for model in listed.data] == ["ideogram-v4"]
        assert await server.ledger(limited) == (1000 - 28, 1000 - 28)


async def test_out_of_credits_is_openai_s_insufficient_quota(settings: Settings) -> None:
    async with running_server(settings) as server:
        poor = await server.account(credits=27)
        async with sdk(server, poor.key) as client:
            with pytest.raises(openai.RateLimitError) as quota:
                await client.images.generate(model="ideogram-v4", prompt="a cat")
        assert quota.value.code == "insufficient_quota"
        assert quota.value.response.headers["x-should-retry"] == "false"  # no use asking again
        assert await server.ledger(poor) == (27, 27)


async def test_a_wait_that_runs_out_answers_202_and_the_task_runs_on(settings: Settings) -> None:
    held = HeldProvider()
    async with held_server(settings.model_copy(update={"openai_max_wait": 0.3}), held) as server:
        account = await server.account(credits=100)
        body = {"model": "ideogram-v4", "prompt": "a slow one"}
        answer = await server.http.post(
            "/openai/v1/images/generations", json=body, headers=account.headers
        )
        assert answer.status_code == 202
        assert answer.json()["data"] == []
        [pending] = answer.json()["pending"]
        assert pending["url"] == f"{server.base_url}/v1/tasks/{pending['id']}"

        held.release.set()
        task = await server.wait_final(account, pending["id"])
        assert task["status"] == "completed"
        assert await server.ledger(account) == (100 - 28, 100 - 28)  # charged once


async def test_the_task_api_is_untouched_by_the_openai_prefix(settings: Settings) -> None:
    async with running_server(settings) as server:
        account: Account = await server.account(credits=100)
        unknown = await server.http.get("/v1/nothing", headers=account.headers)
        assert unknown.json()["error"]["type"] == "invalid_request_error"
        assert set(unknown.json()["error"]) == {"code", "message", "type"}  # the reference's
        openai_unknown = await server.http.get("/openai/v1/nothing", headers=account.headers)
        assert openai_unknown.status_code == 404
        assert set(openai_unknown.json()["error"]) == {"message", "type", "param", "code"}
        await wait_for(lambda: _healthy(server.http), within=5)


async def _healthy(http: httpx.AsyncClient) -> bool:
    return (await http.get("/healthz")).status_code == 200
