"""GET /v1/models: the active models the calling key may use, at the prices its account pays."""

from __future__ import annotations

from typing import Any

from harness import Account, Server
from imagegate.billing.plans import save_plan, set_account_plan
from imagegate.catalog.service import ModelChange, create_model, set_active
from imagegate.db.sql import SessionTx
from imagegate.keys.policy import PolicyChange

ALL_SIZES = [
    {"size": "1:1", "width": 1024, "height": 1024},
    {"size": "3:4", "width": 864, "height": 1152},
    {"size": "9:16", "width": 720, "height": 1280},
    {"size": "4:3", "width": 1152, "height": 864},
    {"size": "16:9", "width": 1280, "height": 720},
]
IDEOGRAM_V4 = {
    "name": "ideogram-v4",
    "title": "Ideogram V4",
    "prices": {"TURBO": 16, "BALANCED": 28, "QUALITY": 44},
    "sizes": ALL_SIZES,
    "output_formats": ["jpeg", "png"],
    "rendering_speeds": ["TURBO", "BALANCED", "QUALITY"],
}


async def listed(server: Server, account: Account) -> list[dict[str, Any]]:
    response = await server.http.get("/v1/models", headers=account.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["code"], body["msg"], set(body["data"])) == (200, "success", {"models"})
    models: list[dict[str, Any]] = body["data"]["models"]
    return models


async def add_flux(server: Server) -> None:
    async with server.services.db.transaction() as session:
        await create_model(
            SessionTx(session), "flux-schnell",
            ModelChange(title="FLUX.1 [schnell]", reports="black-forest-labs/flux-schnell",
                        prices={"TURBO": 3, "BALANCED": 3, "QUALITY": 5}, sizes=("16:9", "1:1")),
            0.0,
        )  # fmt: skip


async def test_lists_the_seeded_model_at_its_list_prices(server: Server) -> None:
    account = await server.account()
    assert await listed(server, account) == [IDEOGRAM_V4]
    head = await server.http.head("/v1/models", headers=account.headers)
    assert (head.status_code, head.content) == (200, b"")
    assert "x-ratelimit-limit" in head.headers


async def test_a_new_model_is_listed_by_name_and_an_inactive_one_is_not(server: Server) -> None:
    account = await server.account()
    await add_flux(server)
    flux, ideogram = await listed(server, account)
    assert ideogram == IDEOGRAM_V4
    assert flux == {
        "name": "flux-schnell",
        "title": "FLUX.1 [schnell]",
        "prices": {"TURBO": 3, "BALANCED": 3, "QUALITY": 5},
        "sizes": [ALL_SIZES[0], ALL_SIZES[4]],  # in the presets' order
        "output_formats": ["jpeg", "png"],
        "rendering_speeds": ["TURBO", "BALANCED", "QUALITY"],
    }

    async with server.services.db.transaction() as session:
        await set_active(SessionTx(session), "ideogram-v4", False, 0.0)
    assert [model["name"] for model in await listed(server, account)] == ["flux-schnell"]
    async with server.services.db.transaction() as session:
        await set_active(SessionTx(session), "ideogram-v4", True, 0.0)
    assert len(await listed(server, account)) == 2


async def test_a_key_with_a_model_allowlist_sees_only_those_models(server: Server) -> None:
    await add_flux(server)
    only_flux = await server.account(policy=PolicyChange(models=["flux-schnell"]))
    assert [model["name"] for model in await listed(server, only_flux)] == ["flux-schnell"]
    anyone = await server.account()
    assert [model["name"] for model in await listed(server, anyone)] == [
        "flux-schnell",
        "ideogram-v4",
    ]


async def test_an_account_on_a_plan_sees_its_own_prices_rounded_up(server: Server) -> None:
    account, other = await server.account(), await server.account()
    async with server.services.db.transaction() as session:
        await save_plan(session, "partner", "0.8", 0.0)
        await set_account_plan(session, account.id, "partner")
    [model] = await listed(server, account)
    assert model["prices"] == {"TURBO": 13, "BALANCED": 23, "QUALITY": 36}  # 12.8, 22.4, 35.2
    [model] = await listed(server, other)
    assert model["prices"] == IDEOGRAM_V4["prices"]
    # ... and what it lists is what a create charges.
    created = await server.create(account, rendering_speed="BALANCED")
    assert created.status_code == 200, created.text
    assert await server.ledger(account) == (1000 - 23, 1000 - 23)


async def test_a_bad_key_is_401_with_the_reference_envelope(server: Server) -> None:
    response = await server.http.get("/v1/models", headers={"Authorization": "Bearer sk-nope"})
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "invalid_api_key",
            "message": "Invalid API key.",
            "type": "authentication_error",
        }
    }
    missing = await server.http.get("/v1/models")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"


async def test_the_ip_allowlist_and_rate_limit_apply(server: Server) -> None:
    fenced = await server.account(policy=PolicyChange(allow_ips=["10.0.0.0/8"]))
    refused = await server.http.get("/v1/models", headers=fenced.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "ip_not_allowed"
    slow = await server.account(policy=PolicyChange(rate_limit="2"))
    statuses = [
        (await server.http.get("/v1/models", headers=slow.headers)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]


async def test_it_is_documented_in_openapi(server: Server) -> None:
    schema = (await server.http.get("/openapi.json")).json()
    operation = schema["paths"]["/v1/models"]["get"]
    assert set(schema["paths"]["/v1/models"]) == {"get"}
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/ModelListResponse"}
    assert {"401", "403", "429", "500"} <= set(operation["responses"])
    assert operation["security"] == [{"bearerAuth": []}]
    model = schema["components"]["schemas"]["ModelObject"]
    assert set(model["required"]) == set(IDEOGRAM_V4)
