"""GET /metrics after a run of tasks: its counts are what happened."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from harness import HeldProvider, Server, free_port, running_server, wait_for
from imagegate.config import Settings
from imagegate.providers.base import GeneratedImage, GenerationRequest, rejected
from imagegate.providers.simulator import SimulatorProvider
from receiver import running_receiver
from scrape import Samples, parse, total

TOKEN = "metrics-token-for-tests"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}
PRICES = {"TURBO": 16, "BALANCED": 28, "QUALITY": 44}


class RejectingSimulator:
    """The simulator, refusing prompts that say REJECT (as an upstream's safety check would)."""

    name = "simulator"

    def __init__(self) -> None:
        self.simulator = SimulatorProvider(lambda _speed: 0.0)

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        if "REJECT" in request.prompt:
            raise rejected("the prompt says REJECT")
        return await self.simulator.generate(request)


async def scrape(server: Server) -> Samples:
    response = await server.http.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@pytest.fixture
def metered(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})


async def test_counts_after_a_run_of_tasks_match_what_happened(metered: Settings) -> None:
    async with running_server(metered, providers={"ideogram-v4": RejectingSimulator()}) as s:
        account = await s.account(credits=10_000)
        before = await scrape(s)
        runs = [("TURBO", "a cat")] * 3 + [("QUALITY", "a dog")] * 2 + [("BALANCED", "REJECT")]
        tasks = await asyncio.gather(
            *(s.run(account, prompt=prompt, rendering_speed=speed) for speed, prompt in runs)
        )
        assert [t["status"] for t in tasks].count("failed") == 1
        after = await scrape(s)

    def created(speed: str) -> float:
        return grew(before, after, "imagegate_tasks_created_total", speed=speed)

    assert (created("TURBO"), created("QUALITY"), created("BALANCED")) == (3, 2, 1)
    completed = "imagegate_tasks_completed_total"
    assert grew(before, after, completed, model="ideogram-v4", provider="simulator") == 5
    failed = grew(before, after, "imagegate_tasks_failed_total", provider="simulator")
    assert failed == 1
    charged = 3 * PRICES["TURBO"] + 2 * PRICES["QUALITY"] + PRICES["BALANCED"]
    assert grew(before, after, "imagegate_credits_charged_total") == charged
    assert grew(before, after, "imagegate_credits_refunded_total") == PRICES["BALANCED"]
    assert grew(before, after, "imagegate_task_duration_seconds_count") == 6
    assert grew(before, after, "imagegate_provider_calls_total", outcome="ok") == 5
    route = "/v1/images/generations"
    assert grew(before, after, "imagegate_http_requests_total", route=route, status="200") == 6
    assert grew(before, after, "imagegate_http_request_duration_seconds_count", route=route) == 6
    # Every run job is done: no task queue has anything waiting.
    assert total(after, "imagegate_queue_depth", queue="model:ideogram-v4") == 0


async def test_a_cancelled_task_counts_as_failed_and_refunded(metered: Settings) -> None:
    held = HeldProvider()
    async with running_server(metered, providers={"ideogram-v4": held}) as s:
        try:
            account = await s.account()
            before = await scrape(s)
            created = await s.create(account, rendering_speed="TURBO")
            task_id = created.json()["data"]["taskId"]

            async def running() -> bool:
                return held.started == 1

            await wait_for(running, within=10)
            busy = await scrape(s)
            assert grew(before, busy, "imagegate_provider_in_flight", provider="simulator") == 1
            cancel = await s.http.post(f"/v1/tasks/{task_id}/cancel", headers=account.headers)
            assert cancel.status_code == 200, cancel.text
            after = await scrape(s)
        finally:
            held.release.set()
    failed = "imagegate_tasks_failed_total"
    assert grew(before, after, failed, error="cancelled", provider="none") == 1
    assert grew(before, after, "imagegate_credits_refunded_total") == PRICES["TURBO"]


async def test_waiting_jobs_show_as_queue_depth_and_age(metered: Settings) -> None:
    async with running_server(metered) as s:
        await s.stop_workers()
        account = await s.account()
        for _ in range(3):
            assert (await s.create(account)).status_code == 200
        s.clock.advance(30)
        samples = await scrape(s)
    assert total(samples, "imagegate_queue_depth", queue="model:ideogram-v4") == 3
    assert total(samples, "imagegate_queue_oldest_job_age_seconds", queue="model:ideogram-v4") >= 30


async def test_metrics_need_the_token_and_are_off_without_one(settings: Settings) -> None:
    async with running_server(settings) as s:
        off = await s.http.get("/metrics")
    assert off.status_code == 404
    assert "IMAGEGATE_METRICS_TOKEN" in off.json()["error"]["message"]
    async with running_server(settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})) as s:
        anonymous = await s.http.get("/metrics")
        wrong = await s.http.get("/metrics", headers={"Authorization": "Bearer nope"})
    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert "IMAGEGATE_METRICS_TOKEN" in response.json()["error"]["message"]


async def test_the_metrics_port_serves_without_a_token(settings: Settings) -> None:
    port = free_port()
    async with running_server(settings.model_copy(update={"metrics_port": port})) as s:
        account = await s.account()
        await s.run(account)
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert total(parse(response.text), "imagegate_tasks_completed_total") >= 1


async def test_callback_attempts_count_by_outcome(metered: Settings) -> None:
    lenient = metered.model_copy(update={"callback_allow_private": True,
                                         "callback_retry_delays": (0.0, 0.0)})  # fmt: skip
    async with running_receiver(lambda n: 500 if n == 1 else 200) as receiver:
        async with running_server(lenient) as s:
            account = await s.account()
            before = await scrape(s)
            body = {"model": "ideogram-v4", "callback_url": receiver.url, "input": {"prompt": "x"}}
            created = await s.http.post(
                "/v1/images/generations", json=body, headers=account.headers
            )
            assert created.status_code == 200, created.text

            async def delivered() -> Samples | None:
                after = await scrape(s)
                done = grew(before, after, "imagegate_callback_attempts_total", outcome="delivered")
                return after if done else None

            after = await wait_for(delivered, within=20)
    attempts = "imagegate_callback_attempts_total"
    assert grew(before, after, attempts, outcome="retry") == 1
    assert grew(before, after, attempts, outcome="delivered") == 1
    assert grew(before, after, attempts, outcome="failed") == 0
