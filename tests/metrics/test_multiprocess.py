"""Metrics with several processes: an API process and a separate worker sharing
PROMETHEUS_MULTIPROC_DIR; the API's /metrics counts what the worker did."""

from __future__ import annotations

import httpx
import pytest

from harness import BACKEND, REDIS_URL, free_port, wait_for
from imagegate.config import Settings
from processes import imagegate_process, provision, responds
from scrape import parse, total

pytestmark = pytest.mark.skipif(
    BACKEND != "postgres",
    reason="separate workers are the scale-out mode (PostgreSQL): the postgres pass runs this",
)


async def test_the_api_answers_for_its_worker_through_the_shared_directory(
    settings: Settings,
) -> None:
    account = await provision(settings, credits=1000)
    shared = settings.data_dir.parent / "prometheus"
    shared.mkdir()
    shared_dir = {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    env = {"simulator_delay": "0", "redis_url": REDIS_URL, "metrics_token": "t0ken-for-tests"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with (
        imagegate_process(
            settings, "serve", "--no-worker", "--port", str(port),
            environ=shared_dir, **env,
        ),
        imagegate_process(settings, "worker", environ=shared_dir, **env),
        httpx.AsyncClient(base_url=base, headers=account.headers) as http,
    ):  # fmt: skip
        await wait_for(lambda: responds(http), within=60)
        body = {"model": "ideogram-v4", "input": {"prompt": "x", "rendering_speed": "TURBO"}}
        for _ in range(3):
            assert (await http.post("/v1/images/generations", json=body)).status_code == 200

        async def scraped() -> float | None:
            response = await http.get(
                "/metrics", headers={"Authorization": "Bearer t0ken-for-tests"}
            )
            samples = parse(response.text)
            done = total(samples, "imagegate_tasks_completed_total", speed="TURBO")
            return done if done == 3 else None

        assert await wait_for(scraped, within=30) == 3
        response = await http.get("/metrics", headers={"Authorization": "Bearer t0ken-for-tests"})
    samples = parse(response.text)
    assert total(samples, "imagegate_tasks_created_total", speed="TURBO") == 3  # the API's
    assert total(samples, "imagegate_credits_charged_total") == 3 * 16
