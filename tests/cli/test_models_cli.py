"""`imagegate admin model ...` and `imagegate admin plan ...` as an operator runs them: models
created, listed, shown, re-priced, switched off and on; price plans set and assigned; refused
input says which option is wrong, exits 1 and changes nothing; and the running server follows."""

from __future__ import annotations

import json
from typing import Any

from cli.test_admin_cli import admin_json, imagegate
from harness import Account, Server
from imagegate.billing import service as billing
from imagegate.billing.plans import list_plans
from imagegate.catalog import IDEOGRAM_V4, CatalogModel
from imagegate.catalog.service import get_model, list_models
from imagegate.db.sql import SessionTx

FLUX = {
    "replicate": {
        "model": "black-forest-labs/flux-schnell",
        "input": {"prompt": "{prompt}", "aspect_ratio": "{size}",
                  "output_format": "{output_format}"},
        "values": {"output_format": {"jpeg": "jpg"}},
    }
}  # fmt: skip
CREATE_FLUX = (
    "model", "create", "flux-schnell", "--title", "FLUX.1 [schnell]",
    "--price-turbo", "3", "--price-balanced", "4", "--price-quality", "5",
    "--reports", "black-forest-labs/flux-schnell", "--size", "16:9", "--size", "1:1",
    "--provider", "replicate", "--provider", "simulator",
    "--upstream-json", json.dumps(FLUX), "--queue", "model:flux-schnell",
)  # fmt: skip
SEED = {
    "name": "ideogram-v4",
    "title": "Ideogram V4",
    "prices": {"TURBO": 16, "BALANCED": 28, "QUALITY": 44},
    "reports": "ideogram-ai/ideogram-v4",
    "sizes": ["1:1", "3:4", "9:16", "4:3", "16:9"],
    "active": True,
    "providers": None,
    "upstream": {},
    "queue": "model:ideogram-v4",
}


async def models(server: Server) -> list[CatalogModel]:
    async with server.services.db.transaction() as session:
        return await list_models(SessionTx(session))


async def model(server: Server, name: str) -> CatalogModel:
    async with server.services.db.transaction() as session:
        return await get_model(SessionTx(session), name)


async def plans_and_plan_of(server: Server, account: Account) -> tuple[dict[str, str], str | None]:
    async with server.services.db.transaction() as session:
        plans = {plan.name: plan.ratio for plan in await list_plans(session)}
        return plans, (await billing.get_account(session, account.id)).price_plan


async def generate(server: Server, account: Account, name: str) -> Any:
    body = {"model": name, "input": {"prompt": "a lighthouse"}}
    return await server.http.post("/v1/images/generations", json=body, headers=account.headers)


async def test_create_list_show_update_deactivate_and_activate(server: Server) -> None:
    settings = server.services.settings
    assert await admin_json(settings, "model", "list") == {"models": [SEED]}

    created = await admin_json(settings, *CREATE_FLUX)
    flux = {
        "name": "flux-schnell",
        "title": "FLUX.1 [schnell]",
        "prices": {"TURBO": 3, "BALANCED": 4, "QUALITY": 5},
        "reports": "black-forest-labs/flux-schnell",
        "sizes": ["1:1", "16:9"],
        "active": True,
        "providers": ["replicate", "simulator"],
        "upstream": FLUX,
        "queue": "model:flux-schnell",
    }
    assert created == flux
    assert await model(server, "flux-schnell") == CatalogModel(
        name="flux-schnell", title="FLUX.1 [schnell]", prices=flux["prices"],
        reports="black-forest-labs/flux-schnell", sizes=("1:1", "16:9"), active=True,
        providers=("replicate", "simulator"), upstream=FLUX, queue="model:flux-schnell",
    )  # fmt: skip
    assert await admin_json(settings, "model", "list") == {"models": [flux, SEED]}
    assert await admin_json(settings, "model", "show", "flux-schnell") == flux

    out, _ = await imagegate(settings, "admin", "model", "list")
    assert out.splitlines() == [
        "flux-schnell: active, 3/4/5 credits (TURBO/BALANCED/QUALITY), route replicate, simulator",
        "ideogram-v4: active, 16/28/44 credits (TURBO/BALANCED/QUALITY), route default",
    ]
    out, _ = await imagegate(settings, "admin", "model", "show", "flux-schnell")
    assert out.splitlines() == [
        "flux-schnell (FLUX.1 [schnell]): active",
        "  prices   TURBO 3, BALANCED 4, QUALITY 5",
        "  reports  black-forest-labs/flux-schnell",
        "  sizes    1:1, 16:9",
        "  route    replicate, simulator",
        f"  upstream {json.dumps(FLUX)}",
        "  queue    model:flux-schnell",
    ]

    # A price given alone changes alone; other fields stay as they were.
    updated = await admin_json(settings, "model", "update", "flux-schnell", "--price-balanced", "6")
    assert updated == {**flux, "prices": {"TURBO": 3, "BALANCED": 6, "QUALITY": 5}}
    # Upstream options need a route of their own: the default route may not know them.
    _, err = await imagegate(
        settings, "admin", "model", "update", "flux-schnell", "--default-route", expect=1
    )
    assert err == "error: --provider: a model with upstream options names its route (e.g." \
        " replicate)\n"  # fmt: skip
    out, _ = await imagegate(
        settings, "admin", "model", "update", "flux-schnell", "--default-route",
        "--upstream-json", "{}", "--title", "Flux",
    )  # fmt: skip
    assert out == "updated model flux-schnell: active, 3/6/5 credits (TURBO/BALANCED/QUALITY), "\
        "route default\n"  # fmt: skip
    after = await model(server, "flux-schnell")
    assert (after.title, after.providers, after.prices["BALANCED"]) == ("Flux", None, 6)
    assert after.upstream == {}

    deactivated = await admin_json(settings, "model", "deactivate", "flux-schnell")
    assert deactivated["active"] is False
    assert not (await model(server, "flux-schnell")).active
    out, _ = await imagegate(settings, "admin", "model", "list")
    assert out.splitlines()[0].startswith("flux-schnell: inactive, 3/6/5 credits")
    out, _ = await imagegate(settings, "admin", "model", "activate", "flux-schnell")
    assert out == "model flux-schnell activated\n"
    assert (await model(server, "flux-schnell")).active


async def test_the_running_server_offers_what_the_cli_creates_and_stops_what_it_deactivates(
    server: Server,
) -> None:
    settings = server.services.settings
    customer = await server.account(credits=100)
    out, _ = await imagegate(
        settings, "admin", "model", "create", "sim-fast", "--title", "Simulated",
        "--price-turbo", "1", "--price-balanced", "2", "--price-quality", "3",
        "--reports", "acme/sim-fast", "--provider", "simulator", "--inactive",
    )  # fmt: skip
    assert out == "created model sim-fast: inactive, 1/2/3 credits (TURBO/BALANCED/QUALITY), "\
        "route simulator\n"  # fmt: skip
    assert (await generate(server, customer, "sim-fast")).status_code == 404

    await imagegate(settings, "admin", "model", "activate", "sim-fast")
    accepted = await generate(server, customer, "sim-fast")
    assert accepted.status_code == 200, accepted.text
    task = await server.wait_final(customer, accepted.json()["data"]["taskId"])
    assert task["status"] == "completed"
    assert task["output"]["metadata"]["model"] == "acme/sim-fast"
    assert await server.ledger(customer) == (98, 98)

    await imagegate(settings, "admin", "model", "deactivate", "sim-fast")
    refused = await generate(server, customer, "sim-fast")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "model_not_found"


async def test_refused_input_names_the_option_exits_1_and_changes_nothing(server: Server) -> None:
    settings = server.services.settings
    create = ("admin", "model", "create")
    prices = ("--price-turbo", "1", "--price-balanced", "2", "--price-quality", "3")
    fine = ("--title", "T", *prices, "--reports", "acme/m")
    for args, error in [
        ((*create, "Bad Name", *fine), "error: NAME: a model's name is 1-64 characters"),
        ((*create, "m", "--title", "T", "--price-turbo", "1", "--reports", "acme/m"),
         "error: --price-turbo/--price-balanced/--price-quality: prices must give each of"),
        ((*create, "m", "--title", "T", "--reports", "acme/m"),
         "error: --price-turbo/--price-balanced/--price-quality: a new model needs its prices"),
        ((*create, "m", *fine, "--provider", "midjourney"),
         "error: --provider: the route is one or more of simulator, ideogram, replicate"),
        ((*create, "m", *fine, "--upstream-json", '{"replicate": '),
         "error: --upstream-json: not valid JSON"),
        ((*create, "m", *fine, "--upstream-json", '["replicate"]'),
         "error: --upstream-json: must be a JSON object"),
        ((*create, "m", *fine, "--upstream-json", '{"replicate": {"modle": "a/b"}}'),
         "error: --upstream-json: upstream.replicate: unknown option(s) modle"),
        ((*create, "m", *fine, "--size", "2:1"), "error: --size: sizes must be some of 1:1"),
        ((*create, "m", *fine, "--queue", "callbacks"), "error: --queue: the queue is 1-64"),
        ((*create, "ideogram-v4", *fine),
         "error: NAME: a model named 'ideogram-v4' exists already"),
        (("admin", "model", "update", "ideogram-v4", "--price-turbo", "-1"),
         "error: --price-turbo/--price-balanced/--price-quality: prices must give each of"),
        (("admin", "model", "update", "ideogram-v4", "--title", " "),
         "error: --title: the title must be 1-200 characters"),
        (("admin", "model", "update", "ideogram-v4", "--provider", "simulator",
          "--default-route"), "error: --provider and --default-route cannot be used together"),
        (("admin", "model", "update", "nope", "--title", "T"), "error: not found: no model 'nope'"),
        (("admin", "model", "deactivate", "nope"), "error: not found: no model 'nope'"),
        (("admin", "model", "show", "nope"), "error: not found: no model 'nope'"),
    ]:  # fmt: skip
        out, err = await imagegate(settings, *args, expect=1)
        assert out == ""
        assert len(err.splitlines()) == 1, (args, err)
        assert err.startswith(error), (args, err)

    _, err = await imagegate(settings, *create, "m", "--title", "T", "--json", expect=1)
    assert json.loads(err) == {"error": "--price-turbo/--price-balanced/--price-quality: "
                                        "a new model needs its prices"}  # fmt: skip
    assert await models(server) == [IDEOGRAM_V4]


async def test_plans_set_list_and_assign(server: Server) -> None:
    settings = server.services.settings
    customer = await server.account(credits=100)
    out, _ = await imagegate(settings, "admin", "plan", "list")
    assert out == "no plans\n"

    gold = await admin_json(settings, "plan", "set", "gold", "0.9")
    assert set(gold) == {"name", "ratio", "created_at", "updated_at"}
    assert (gold["name"], gold["ratio"]) == ("gold", "0.9")
    out, _ = await imagegate(settings, "admin", "plan", "set", "gold", "0.80")
    assert out == "plan gold: list prices x 0.8, rounded up to a whole credit\n"
    await imagegate(settings, "admin", "plan", "set", "bronze", "1")
    listed = await admin_json(settings, "plan", "list")
    assert [(p["name"], p["ratio"]) for p in listed["plans"]] == [("bronze", "1"), ("gold", "0.8")]
    out, _ = await imagegate(settings, "admin", "plan", "list")
    assert out.splitlines() == [
        "bronze: list prices x 1, rounded up to a whole credit",
        "gold: list prices x 0.8, rounded up to a whole credit",
    ]

    assigned = await admin_json(settings, "plan", "assign", customer.id, "gold")
    assert assigned == {"id": customer.id, "price_plan": "gold"}
    assert await plans_and_plan_of(server, customer) == ({"bronze": "1", "gold": "0.8"}, "gold")
    await server.run(customer)  # BALANCED: 28 x 0.8 = 22.4, rounded up
    assert await server.ledger(customer) == (100 - 23, 100 - 23)

    for args, error in [
        (("assign", customer.id, "platinum"), "error: not found: no price plan 'platinum'"),
        (("assign", "no-such-account", "gold"), "error: not found: no account no-such-account"),
        (("set", "gold", "abc"), "error: ratio must be a decimal number such as 0.8, not 'abc'"),
        (("set", "gold", "101"), "error: ratio must be between 0 and 100"),
        (("set", "Gold Plan", "0.5"), "error: a plan's name is 1-64 characters"),
    ]:
        _, err = await imagegate(settings, "admin", "plan", *args, expect=1)
        assert len(err.splitlines()) == 1, (args, err)
        assert err.startswith(error), (args, err)
    assert await plans_and_plan_of(server, customer) == ({"bronze": "1", "gold": "0.8"}, "gold")

    out, _ = await imagegate(settings, "admin", "plan", "assign", customer.id, "none")
    assert out == f"account {customer.id} on list prices\n"
    assert await plans_and_plan_of(server, customer) == ({"bronze": "1", "gold": "0.8"}, None)
