"""The catalogue as data (issue 18): what operators change reaches every API process on its next
create; prices are charged as they were when a task was created; price plans; a second model."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import httpx

from harness import Account, running_server
from imagegate.billing.plans import save_plan, set_account_plan
from imagegate.catalog import IDEOGRAM_V4, CatalogModel
from imagegate.catalog.service import ModelChange, create_model, set_active, update_model
from imagegate.config import Settings
from imagegate.db.sql import SessionTx
from imagegate.keys.policy import PolicyChange
from imagegate.services import Services, build_services
from processes import api_clients, database_view, provision
from upstream_fakes import FakeReplicate, running, upstream_settings

BALANCED = IDEOGRAM_V4.price("BALANCED")
FLUX_ROUTE = {
    "model": "black-forest-labs/flux-schnell",
    "input": {"prompt": "{prompt}", "aspect_ratio": "{size}", "output_format": "{output_format}",
              "go_fast": True},
    "values": {"output_format": {"jpeg": "jpg"}},
}  # fmt: skip


async def change(services: Services, name: str, **fields: Any) -> CatalogModel:
    """What `imagegate admin model update` does."""
    async with services.db.transaction() as session:
        return await update_model(SessionTx(session), name, ModelChange(**fields), 0.0)


async def activate(services: Services, name: str, active: bool) -> None:
    async with services.db.transaction() as session:
        await set_active(SessionTx(session), name, active, 0.0)


async def put_on_plan(services: Services, account: Account, plan: str, ratio: str) -> None:
    async with services.db.transaction() as session:
        await save_plan(session, plan, ratio, 0.0)
        await set_account_plan(session, account.id, plan)


async def create(
    http: httpx.AsyncClient, account: Account, model: str = "ideogram-v4", **fields: Any
) -> httpx.Response:
    body = {"model": model, "input": {"prompt": "a lighthouse", **fields}}
    return await http.post("/v1/images/generations", json=body, headers=account.headers)


async def test_every_api_process_sees_a_deactivation_and_a_new_price_on_its_next_create(
    settings: Settings,
) -> None:
    account = await provision(settings, credits=10_000)
    operator = build_services(settings)  # the operator's CLI, in a process of its own
    try:
        async with AsyncExitStack() as stack:
            first, second = await api_clients(stack, settings)
            for http in (first, second):  # each has read the catalogue once
                assert (await create(http, account)).status_code == 200

            await activate(operator, "ideogram-v4", False)
            for http in (first, second):
                refused = await create(http, account)
                assert refused.status_code == 404
                assert refused.json()["error"] == {
                    "code": "model_not_found",
                    "message": "Model 'ideogram-v4' does not exist or is inactive.",
                    "type": "invalid_request_error",
                }

            await activate(operator, "ideogram-v4", True)
            await change(operator, "ideogram-v4", prices={"TURBO": 16, "BALANCED": 30,
                                                         "QUALITY": 44})  # fmt: skip
            for http in (first, second):
                assert (await create(http, account)).status_code == 200
        tasks, _, balance, ledger = await database_view(settings, account.id)
    finally:
        await operator.close()
    # Two tasks before the change at the old price, two after at the new; none while inactive.
    assert sorted(task.price for task in tasks) == [BALANCED, BALANCED, 30, 30]
    assert balance == ledger == 10_000 - 2 * BALANCED - 2 * 30


async def test_a_task_keeps_the_price_it_was_charged_and_is_refunded_that(
    settings: Settings,
) -> None:
    async with running_server(settings) as server:
        account = await server.account(credits=1000)
        await server.stop_workers()  # the task waits, charged at today's price
        first = (await server.create(account, prompt="[simulate:upstream_error]")).json()
        await change(server.services, "ideogram-v4",
                     prices={"TURBO": 16, "BALANCED": 40, "QUALITY": 44})  # fmt: skip
        assert await server.ledger(account) == (1000 - BALANCED, 1000 - BALANCED)
        await server.services.start_workers()

        failed = await server.wait_final(account, first["data"]["taskId"])
        assert failed["status"] == "failed"
        assert await server.ledger(account) == (1000, 1000)  # refunded what it was charged
        completed = await server.run(account)
        assert completed["output"]["metadata"]["model"] == "ideogram-ai/ideogram-v4"
        assert await server.ledger(account) == (1000 - 40, 1000 - 40)


async def test_a_plan_of_0_8_charges_refunds_and_limits_spend_in_planned_credits(
    settings: Settings,
) -> None:
    planned = 23  # 0.8 x 28 = 22.4, rounded up
    async with running_server(settings) as server:
        policy = PolicyChange(hourly_limit=str(2 * planned))
        account = await server.account(credits=1000, policy=policy)
        await put_on_plan(server.services, account, "partner", "0.8")

        await server.run(account)
        assert await server.ledger(account) == (1000 - planned, 1000 - planned)
        failed = await server.run(account, prompt="[simulate:upstream_error]")
        assert failed["status"] == "failed"
        assert await server.ledger(account) == (1000 - planned, 1000 - planned)

        await server.run(account)  # 46 of the hour's 46 credits
        refused = await server.create(account)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "spend_limit_exceeded"
        assert await server.ledger(account) == (1000 - 2 * planned, 1000 - 2 * planned)


async def test_a_second_model_routed_to_replicate_completes_with_its_own_inputs(
    settings: Settings,
) -> None:
    async with running(FakeReplicate()) as replicate:
        async with running_server(upstream_settings(settings, replicate=replicate)) as server:
            async with server.services.db.transaction() as session:
                await create_model(
                    SessionTx(session), "flux-schnell",
                    ModelChange(title="FLUX.1 [schnell]", reports="black-forest-labs/flux-schnell",
                                prices={"TURBO": 3, "BALANCED": 3, "QUALITY": 5},
                                sizes=("1:1", "16:9"), providers=("replicate",),
                                upstream={"replicate": FLUX_ROUTE}),
                    0.0,
                )  # fmt: skip
            account = await server.account(credits=100)

            response = await create(server.http, account, "flux-schnell", size="16:9")
            assert response.status_code == 200, response.text
            task = await server.wait_final(account, response.json()["data"]["taskId"])

            assert task["status"] == "completed", task
            assert task["model"] == "flux-schnell"
            assert task["output"]["metadata"]["model"] == "black-forest-labs/flux-schnell"
            image = await server.http.get(task["output"]["urls"][0])
            assert image.status_code == 200
            assert image.headers["content-type"] == "image/jpeg"
            [call] = [c for c in replicate.calls if c.path.endswith("/predictions")]
            assert call.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
            assert call.body == {"input": {"prompt": "a lighthouse", "aspect_ratio": "16:9",
                                           "output_format": "jpg", "go_fast": True}}  # fmt: skip
            assert await server.ledger(account) == (97, 97)

            other_size = await create(server.http, account, "flux-schnell", size="3:4")
            assert other_size.status_code == 400
            assert "1:1, 16:9" in other_size.json()["error"]["message"]


async def test_an_unknown_or_inactive_model_is_404_like_a_key_outside_its_allowlist(
    settings: Settings,
) -> None:
    async with running_server(settings) as server:
        account = await server.account(credits=100)
        unknown = await create(server.http, account, "ideogram-v9")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "model_not_found"
        await activate(server.services, "ideogram-v4", False)
        inactive = await create(server.http, account)
        assert inactive.status_code == 404
        message = unknown.json()["error"]["message"]
        assert inactive.json()["error"]["message"] == message.replace("v9", "v4")
        assert await server.ledger(account) == (100, 100)

        await activate(server.services, "ideogram-v4", True)
        assert (await create(server.http, account)).status_code == 200


async def test_a_model_s_own_queue_is_worked_whether_new_or_left_behind(
    settings: Settings,
) -> None:
    """PostgreSQL's workers listen to named queues: one a model gets after they started is
    taken within seconds, and jobs a model left in its old queue are taken at the next start."""
    async with running_server(settings) as server:
        account = await server.account(credits=1000)
        async with server.services.db.transaction() as session:
            await create_model(
                SessionTx(session), "sketch",
                ModelChange(title="Sketch", reports="acme/sketch", queue="gpu",
                            prices={"TURBO": 1, "BALANCED": 2, "QUALITY": 3}),
                0.0,
            )  # fmt: skip
        created = await create(server.http, account, "sketch")
        task = await server.wait_final(account, created.json()["data"]["taskId"])
        assert (task["status"], task["output"]["metadata"]["model"]) == ("completed", "acme/sketch")

        await server.stop_workers()
        left = await create(server.http, account, "sketch")  # its job waits in "gpu"
        await change(server.services, "sketch", queue="cpu")
        await server.services.start_workers()
        task = await server.wait_final(account, left.json()["data"]["taskId"])
        assert task["status"] == "completed"
        moved = await create(server.http, account, "sketch")
        task = await server.wait_final(account, moved.json()["data"]["taskId"])
        assert task["status"] == "completed"
        assert await server.ledger(account) == (1000 - 3 * 2, 1000 - 3 * 2)
