"""The operator's catalogue page (issue 18): models created, edited, deactivated and activated
from the console, and price plans made and given to accounts, as the operator sees them and as
API clients then meet them."""

from __future__ import annotations

import re
import uuid
from html import unescape

import httpx
from playwright.async_api import Dialog, expect

from console_support import (
    PASSWORD,
    ConsoleClient,
    Person,
    chromium,
    csrf_of,
    make_person,
    screenshot,
)
from harness import Account, Server
from imagegate.catalog import CatalogModel
from imagegate.catalog.service import get_model, list_models
from imagegate.db.sql import SessionTx

MODELS = "/console/admin/models"
Form = dict[str, str | list[str]]
NEW_MODEL: Form = {
    "name": "sketch-v1",
    "title": "Sketch V1",
    "price_turbo": "5",
    "price_balanced": "9",
    "price_quality": "13",
    "reports": "acme/sketch-v1",
    "sizes": ["1:1", "16:9"],
    "route": "simulator",
    "upstream": "{}",
    "queue": "",
}
IDEOGRAM_FORM: Form = {
    "title": "Ideogram V4",
    "price_turbo": "16",
    "price_balanced": "28",
    "price_quality": "44",
    "reports": "ideogram-ai/ideogram-v4",
    "sizes": ["1:1", "3:4", "9:16", "4:3", "16:9"],
    "route": "default",
    "upstream": "{}",
    "queue": "model:ideogram-v4",
}


def unique_email(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def seen(page: httpx.Response) -> str:
    """The page's text as a person reads it: tags gone, white space collapsed."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)))


async def operator_browser(server: Server) -> ConsoleClient:
    operator = await make_person(server, unique_email("op"), role="operator")
    return await signed_in(server, operator)


async def signed_in(server: Server, person: Person) -> ConsoleClient:
    client = ConsoleClient(server)
    assert (await client.sign_in(person.email)).url.path == "/console"
    return client


async def post(client: ConsoleClient, form_page: str, action: str, data: Form) -> httpx.Response:
    """Post ``data`` (a list value: ticked checkboxes) with the CSRF token of ``form_page``."""
    page = await client.get(form_page)
    assert page.status_code == 200, page.text
    return await client.http.post(action, data={"csrf_token": csrf_of(page.text), **data})


async def create(server: Server, account: Account, model: str) -> httpx.Response:
    body = {"model": model, "input": {"prompt": "a lighthouse"}}
    return await server.http.post("/v1/images/generations", json=body, headers=account.headers)


async def catalogue(server: Server) -> list[CatalogModel]:
    async with server.services.db.sessions() as session:
        return await list_models(SessionTx(session))


async def test_an_operator_adds_edits_deactivates_and_activates_a_model(server: Server) -> None:
    account = await server.account(credits=1000)
    async with await operator_browser(server) as op:
        page = await op.get(MODELS)
        assert page.status_code == 200
        assert '<a href="/console/admin/models" aria-current="page">Models</a>' in page.text
        assert "ideogram-v4 Ideogram V4 active 16 28 44" in seen(page)

        added = await post(op, MODELS, MODELS, NEW_MODEL)
        assert added.status_code == 200
        assert added.url.path == MODELS
        assert "Model sketch-v1 created: clients can use it now." in added.text
        row = "sketch-v1 Sketch V1 active 5 9 13 1:1, 16:9 simulator tasks"
        assert row in seen(added)

        task = await create(server, account, "sketch-v1")
        assert task.status_code == 200, task.text
        done = await server.wait_final(account, task.json()["data"]["taskId"])
        assert done["status"] == "completed"
        assert done["output"]["metadata"]["model"] == "acme/sketch-v1"
        assert await server.ledger(account) == (1000 - 9, 1000 - 9)

        edit = f"{MODELS}/sketch-v1"
        form = await op.get(edit)
        assert 'value="9"' in form.text  # the edit form shows the model as it is
        edited = await post(op, edit, edit, {**NEW_MODEL, "price_balanced": "11", "queue": "tasks"})
        assert "Model sketch-v1 saved." in edited.text
        assert "sketch-v1 Sketch V1 active 5 11 13" in seen(edited)
        assert (await create(server, account, "sketch-v1")).status_code == 200
        assert (await server.ledger(account))[0] == 1000 - 9 - 11

        off = await post(op, MODELS, f"{edit}/deactivate", {})
        assert (
            "Model sketch-v1 deactivated: creates for it now get 404 model_not_found." in off.text
        )
        assert "sketch-v1 Sketch V1 inactive 5 11 13" in seen(off)
        refused = await create(server, account, "sketch-v1")
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "model_not_found"
        listed = await server.http.get("/v1/models", headers=account.headers)
        assert "sketch-v1" not in [m["name"] for m in listed.json()["data"]["models"]]

        on = await post(op, edit, f"{edit}/activate", {})
        assert "Model sketch-v1 activated: clients can use it again." in on.text
        assert "sketch-v1 Sketch V1 active" in seen(on)
        assert (await create(server, account, "sketch-v1")).status_code == 200
    assert (await server.ledger(account))[0] == 1000 - 9 - 11 - 11


async def test_a_refused_value_says_why_marks_the_field_and_changes_nothing(
    server: Server,
) -> None:
    before = await catalogue(server)
    async with await operator_browser(server) as op:
        refusals: list[tuple[Form, str | None, str]] = [
            ({"price_turbo": "-1"}, "model-price-turbo", "prices must give each of TURBO"),
            ({"price_quality": "lots"}, "model-price-quality", "whole number of credits, not"),
            ({"route": "simulator, dall-e"}, "model-route", "the route is one or more of"),
            ({"upstream": '{"replicate": '}, "model-upstream", "not valid JSON"),
            ({"upstream": '{"midjourney": {}}'}, "model-upstream", "upstream options are by"),
            ({"sizes": []}, None, "sizes must be some of"),
            ({"name": "Sketch V1"}, "model-name", "a model's name is 1-64 characters"),
            ({"name": "ideogram-v4"}, "model-name", "a model named 'ideogram-v4' exists already"),
            ({"queue": "callbacks"}, "model-queue", "the queue is 1-64 of"),
        ]
        for change, field, message in refusals:
            page = await post(op, MODELS, MODELS, {**NEW_MODEL, **change})
            assert page.status_code == 400, change
            assert message in unescape(page.text), change
            if field is not None:
                marked = re.search(
                    rf'<(input|textarea) id="{field}"[^>]*aria-invalid="true"', page.text
                )
                assert marked, (change, field)
            assert 'value="Sketch V1"' in page.text  # the form keeps what was typed

        edit = f"{MODELS}/ideogram-v4"
        for edit_change, message in [
            ({"price_balanced": "-28"}, "prices must give each of"),
            ({"route": "replicate, replicate"}, "each once"),
            ({"upstream": '{"simulator": {"speed": 1}}'}, "simulator takes no upstream options"),
            ({"upstream": "[1, 2]"}, "must be a JSON object"),
        ]:
            page = await post(op, edit, edit, {**IDEOGRAM_FORM, **edit_change})
            assert page.status_code == 400, edit_change
            assert message in unescape(page.text), edit_change
            assert "Model ideogram-v4" in page.text  # still the model's own page

        refused_plan = await post(
            op, MODELS, "/console/admin/plans", {"name": "gold", "ratio": "-1"}
        )
        assert refused_plan.status_code == 400
        assert "ratio must be between 0 and 100" in refused_plan.text
        assert 'value="gold"' in refused_plan.text
        assert "No price plans yet" in refused_plan.text
        missing = await post(op, MODELS, f"{MODELS}/no-such-model", IDEOGRAM_FORM)
        assert missing.status_code == 404
    assert await catalogue(server) == before


async def test_an_account_on_a_plan_is_charged_the_planned_price(server: Server) -> None:
    account = await server.account(credits=1000)
    url = f"/console/admin/accounts/{account.id}"
    async with await operator_browser(server) as op:
        saved = await post(op, MODELS, "/console/admin/plans", {"name": "partner", "ratio": "0.9"})
        assert saved.url.fragment == "plans"
        assert "Price plan partner saved: its accounts pay 0.9 × list prices." in saved.text
        changed = await post(
            op, MODELS, "/console/admin/plans", {"name": "partner", "ratio": "0.80"}
        )
        assert "partner 0.8" in seen(changed)

        page = await op.get(url)
        assert "Price plan none: list prices" in seen(page)
        assert '<option value="partner">partner (0.8 × list prices)</option>' in page.text
        put = await post(op, url, f"{url}/plan", {"plan": "partner"})
        assert put.url.path == url
        assert "Account put on price plan partner." in put.text
        assert "Price plan partner (pays 0.8 × list prices)" in seen(put)
        assert '<option value="partner" selected>' in put.text

        assert (await create(server, account, "ideogram-v4")).status_code == 200
        assert await server.ledger(account) == (1000 - 23, 1000 - 23)  # 0.8 × 28 = 22.4 → 23

        unknown = await post(op, url, f"{url}/plan", {"plan": "platinum"})
        assert unknown.status_code == 400
        assert "There is no price plan 'platinum'" in unescape(unknown.text)
        back = await post(op, url, f"{url}/plan", {"plan": ""})
        assert "Account back on list prices." in back.text
        assert (await create(server, account, "ideogram-v4")).status_code == 200
        assert (await server.ledger(account))[0] == 1000 - 23 - 28


async def test_members_get_404_and_forms_need_their_token(server: Server) -> None:
    member = await make_person(server, unique_email("member"))
    async with await signed_in(server, member) as browser:
        for path in (MODELS, f"{MODELS}/ideogram-v4"):
            page = await browser.get(path)
            assert page.status_code == 404, path
            assert "Not found" in page.text
        assert "/console/admin/models" not in (await browser.get("/console")).text  # no nav link
        token = csrf_of((await browser.get("/console")).text)
        posts: list[tuple[str, Form]] = [
            (MODELS, NEW_MODEL),
            (f"{MODELS}/ideogram-v4", {**IDEOGRAM_FORM, "price_balanced": "1"}),
            (f"{MODELS}/ideogram-v4/deactivate", {}),
            ("/console/admin/plans", {"name": "free", "ratio": "0"}),
            (f"/console/admin/accounts/{member.account_id}/plan", {"plan": ""}),
        ]
        for action, data in posts:
            posted = await browser.http.post(action, data={"csrf_token": token, **data})
            assert posted.status_code == 404, action
    async with await operator_browser(server) as op:
        await op.get(MODELS)
        forged = await op.http.post(f"{MODELS}/ideogram-v4/deactivate", data={})
        assert forged.status_code == 403
        assert "This form has expired" in forged.text
        forged = await op.http.post("/console/admin/plans", data={"name": "x", "ratio": "1"})
        assert forged.status_code == 403
        assert "No price plans yet" in (await op.get(MODELS)).text
    async with server.services.db.sessions() as session:
        model = await get_model(SessionTx(session), "ideogram-v4")
    assert model.active
    assert model.prices["BALANCED"] == 28
    assert [m.name for m in await catalogue(server)] == ["ideogram-v4"]


async def test_an_operator_adds_and_deactivates_a_model_in_chromium(server: Server) -> None:
    operator = await make_person(server, unique_email("op"), role="operator")
    account = await server.account(credits=100)
    async with chromium() as browser:
        page = await browser.new_page(
            base_url=server.base_url, viewport={"width": 1024, "height": 800}
        )
        violations: list[str] = []
        page.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        asked: list[str] = []

        async def accept(dialog: Dialog) -> None:
            asked.append(dialog.message)
            await dialog.accept()

        page.on("dialog", accept)
        await page.goto("/console/login")
        await page.get_by_label("Email").fill(operator.email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("link", name="Models").click()
        await expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
        seed = page.get_by_role("link", name="ideogram-v4", exact=True)
        await expect(seed).to_be_visible()
        # A model's name stays on one line, at a 1024 px wide window too: broken at its hyphen
        # it reads as two names.
        assert await seed.evaluate("link => link.getClientRects().length") == 1
        await screenshot(page, "admin-models")

        await page.get_by_label("Model name").fill("sketch-v1")
        await page.get_by_label("Title").fill("Sketch V1")
        await page.get_by_label("TURBO price").fill("5")
        await page.get_by_label("BALANCED price").fill("9")
        await page.get_by_label("QUALITY price").fill("13")
        await page.get_by_label("Reported model").fill("acme/sketch-v1")
        for size in ("3:4", "9:16", "4:3"):
            await page.get_by_label(size, exact=True).uncheck()
        await page.get_by_label("Route").fill("simulator")
        await page.get_by_role("button", name="Add model").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Model sketch-v1 created: clients can use it now."
        )
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name="sketch-v1"))
        await expect(row).to_contain_text("Sketch V1")
        await expect(row).to_contain_text("1:1, 16:9")
        await expect(row.get_by_text("active", exact=True)).to_be_visible()
        await screenshot(page, "admin-models-added")

        await row.get_by_role("button", name="Deactivate sketch-v1").click()
        await expect(page.get_by_role("status")).to_have_text(
            "Model sketch-v1 deactivated: creates for it now get 404 model_not_found."
        )
        await expect(row.get_by_text("inactive", exact=True)).to_be_visible()
        await expect(row.get_by_role("button", name="Activate sketch-v1")).to_be_visible()
        # The table fits the 1024 px window: its last column's buttons are not cut off.
        for button in ("Deactivate ideogram-v4", "Activate sketch-v1"):
            assert await page.get_by_role("button", name=button).evaluate(
                "button => button.getBoundingClientRect().right <= button.closest('.keys-scroll')"
                ".getBoundingClientRect().right"
            )
        await screenshot(page, "admin-models-deactivated")
        assert asked == [
            "Deactivate sketch-v1? Creates for it get 404 until it is activated again."
        ]
        assert violations == []
    refused = await create(server, account, "sketch-v1")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "model_not_found"
