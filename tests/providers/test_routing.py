"""Routing across providers: failover, circuit breakers, 503 at creation, in-flight caps."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from harness import wait_for
from imagegate.config import Settings
from imagegate.db.models import ApiKey
from imagegate.providers.base import SAFETY_REJECTED
from imagegate.providers.setup import default_route
from upstream_fakes import FakeIdeogram, FakeReplicate, running, server_for, upstream_settings

BOTH = {"ideogram-v4": ["ideogram", "replicate"]}


async def test_a_failing_provider_fails_over_to_the_next(settings: Settings) -> None:
    async with (
        running(FakeIdeogram(["500"] * 3)) as ideogram,
        running(FakeReplicate()) as replicate,
    ):
        configured = upstream_settings(settings, ideogram=ideogram, replicate=replicate)
        async with server_for(configured, ideogram, replicate) as server:
            account = await server.account(credits=100)

            task = await server.run(account)

            assert task["status"] == "completed"
            assert len(ideogram.calls) == 3, "1 attempt + 2 retries before failing over"
            assert len(replicate.calls) == 1
            assert await server.ledger(account) == (72, 72), "charged once"


async def test_a_content_rejection_does_not_fail_over(settings: Settings) -> None:
    async with running(FakeIdeogram(["safety"])) as ideogram, running(FakeReplicate()) as rep:
        async with server_for(upstream_settings(settings, ideogram, rep), ideogram) as server:
            account = await server.account()

            task = await server.run(account)

            assert task["error"]["message"] == SAFETY_REJECTED
            assert rep.calls == []


async def test_the_circuit_opens_refuses_new_tasks_and_closes_after_a_probe(
    settings: Settings,
) -> None:
    async with running(FakeIdeogram(["500", "500"])) as fake:
        configured = upstream_settings(
            settings, ideogram=fake, upstream_retries=0,
            circuit_failure_threshold=2, circuit_cooldown=60,
        )  # fmt: skip
        async with server_for(configured, fake) as server:
            account = await server.account(credits=1000)
            for _ in range(2):
                assert (await server.run(account))["status"] == "failed"

            refused = await server.create(account)

            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "upstream_error"
            assert refused.json()["error"]["type"] == "upstream_error"
            assert await server.ledger(account) == (1000, 1000), "nothing charged"
            assert len(fake.calls) == 2

            server.clock.advance(61)  # cooldown over: the next task probes the provider
            assert (await server.run(account))["status"] == "completed"
            assert (await server.run(account))["status"] == "completed"
            assert len(fake.calls) == 4


async def test_an_open_circuit_sends_work_straight_to_the_next_provider(
    settings: Settings,
) -> None:
    async with (
        running(FakeIdeogram(["502"])) as ideogram,
        running(FakeReplicate()) as replicate,
    ):
        configured = upstream_settings(
            settings, ideogram, replicate, upstream_retries=0, circuit_failure_threshold=1
        )
        async with server_for(configured, ideogram, replicate) as server:
            account = await server.account()
            for _ in range(3):
                assert (await server.run(account))["status"] == "completed"

            assert len(ideogram.calls) == 1, "skipped while its circuit is open"
            assert len(replicate.calls) == 3


@pytest.mark.parametrize(
    "routes",
    [
        {"ideogram-v4": ["ideogram"]},  # no IMAGEGATE_IDEOGRAM_API_KEY
        {"ideogram-v4": ["dall-e"]},  # no such provider
        {"ideogram-v4": []},
    ],
)
async def test_a_model_without_a_usable_provider_is_refused_at_creation(
    settings: Settings, routes: dict[str, list[str]]
) -> None:
    async with server_for(upstream_settings(settings, routes=routes)) as server:
        account = await server.account(credits=100)

        response = await server.create(account)

        assert response.status_code == 503
        assert response.json()["error"]["code"] == "upstream_error"
        assert await server.ledger(account) == (100, 100)
        unknown = await server.http.post(
            "/v1/images/generations",
            json={"model": "no-such-model", "input": {"prompt": "x"}},
            headers=account.headers,
        )
        assert unknown.status_code == 404, "an unknown model is still model_not_found"


async def test_the_in_flight_cap_queues_work_instead_of_failing_it(settings: Settings) -> None:
    async with running(FakeIdeogram(["hold"] * 5)) as fake:
        configured = upstream_settings(
            settings, ideogram=fake, ideogram_max_in_flight=2, upstream_timeout=60
        )
        async with server_for(configured, fake) as server:
            account = await server.account(credits=1000)
            created = [await server.create(account) for _ in range(5)]
            ids = [response.json()["data"]["taskId"] for response in created]

            async def all_processing() -> bool:
                tasks = [await server.task(account, task_id) for task_id in ids]
                return all(t["status"] == "processing" for t in tasks)

            await wait_for(all_processing)
            await wait_for(lambda: _held(fake, 2))
            assert len(fake.calls) == 2, "only two requests in flight at Ideogram"
            fake.release()
            finals = await asyncio.gather(*(server.wait_final(account, i) for i in ids))

            assert [t["status"] for t in finals] == ["completed"] * 5
            assert fake.peak_in_flight == 2


def test_the_default_route_follows_the_credentials_given(settings: Settings) -> None:
    assert default_route(settings) == ["simulator"]
    replicate_only = settings.model_copy(update={"replicate_api_token": SecretStr("r8_x")})
    assert default_route(replicate_only) == ["replicate"]
    both = replicate_only.model_copy(update={"ideogram_api_key": SecretStr("k")})
    assert default_route(both) == ["ideogram", "replicate"]


async def _held(fake: FakeIdeogram, n: int) -> bool:
    return fake.in_flight >= n


async def test_a_key_outside_its_model_allowlist_gets_404_even_when_no_provider_can_work(
    settings: Settings,
) -> None:
    async with server_for(upstream_settings(settings, routes={"ideogram-v4": []})) as server:
        account = await server.account(credits=100)
        async with server.services.db.transaction() as session:
            key = await session.get(ApiKey, account.key_id)
            assert key is not None
            key.models = ["another-model"]  # an allowlist without ideogram-v4

        response = await server.create(account)

        # The model check comes before the provider check: the key cannot learn of the model.
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "model_not_found"
        assert await server.ledger(account) == (100, 100)
