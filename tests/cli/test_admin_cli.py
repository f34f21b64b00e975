"""`imagegate admin ...` as an operator runs it: a separate process on the server's database."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from harness import Account, Server
from imagegate.config import Settings


async def imagegate(settings: Settings, *args: str, expect: int = 0) -> tuple[str, str]:
    env = {
        **os.environ,
        "IMAGEGATE_DATA_DIR": str(settings.data_dir),
        "IMAGEGATE_DATABASE_URL": settings.resolved_database_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imagegate", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == expect, err.decode()
    return out.decode(), err.decode()


async def admin_json(settings: Settings, *args: str) -> dict[str, Any]:
    out, _ = await imagegate(settings, "admin", *args, "--json")
    assert out.count("\n") == 1  # exactly one JSON object on one line
    result: dict[str, Any] = json.loads(out)
    return result


async def test_an_operator_provisions_a_customer_end_to_end(server: Server) -> None:
    settings = server.services.settings
    account = await admin_json(settings, "account", "create", "--name", "acme", "--credits", "100")
    assert account == {"id": account["id"], "name": "acme", "credits": 100}
    key = await admin_json(settings, "key", "create", "--account", account["id"], "--name", "ci")
    assert key["key"].startswith("sk-")
    assert key["account_id"] == account["id"]
    customer = Account(id=account["id"], key=key["key"], key_id=key["id"])

    credits = await server.http.get("/v1/credits", headers=customer.headers)
    assert credits.json()["data"]["credits"] == 100
    topped = await admin_json(settings, "account", "top-up", account["id"], "50")
    assert topped["credits"] == 150
    assert (await server.http.get("/v1/credits", headers=customer.headers)).json()["data"] == {
        "credits": 150
    }

    task_id = (await server.create(customer)).json()["data"]["taskId"]
    await server.wait_final(customer, task_id)
    shown = await admin_json(settings, "account", "show", account["id"])
    assert shown["credits"] == 122
    assert [k["id"] for k in shown["keys"]] == [key["id"]]
    assert "key" not in shown["keys"][0]
    assert [(e["kind"], e["amount"]) for e in shown["ledger"]] == [
        ("charge", -28), ("top_up", 50), ("top_up", 100)
    ]  # fmt: skip
    listed = await admin_json(settings, "key", "list", "--account", account["id"])
    assert [k["prefix"] for k in listed["keys"]] == [key["key"][:10]]


async def test_disable_enable_delete_and_ban_take_effect_on_the_running_server(
    server: Server,
) -> None:
    settings = server.services.settings
    customer = await server.account()

    async def status() -> int:
        return (await server.http.get("/v1/credits", headers=customer.headers)).status_code

    steps = [
        (("key", "disable", customer.key_id), {"id": customer.key_id, "status": "disabled"}, 401),
        (("key", "enable", customer.key_id), {"id": customer.key_id, "status": "active"}, 200),
        (("account", "ban", customer.id), {"id": customer.id, "banned": True}, 401),
        (("account", "unban", customer.id), {"id": customer.id, "banned": False}, 200),
        (("key", "delete", customer.key_id), {"id": customer.key_id, "status": "deleted"}, 401),
    ]
    for args, printed, expected_status in steps:
        assert await admin_json(settings, *args) == printed
        assert await status() == expected_status


async def test_human_output_and_errors(server: Server) -> None:
    settings = server.services.settings
    out, _ = await imagegate(settings, "admin", "account", "create", "--name", "bob")
    assert out.startswith("created account ")
    account_id = out.split()[2]
    out, _ = await imagegate(settings, "admin", "key", "create", "--account", account_id)
    assert "sk-" in out
    _, err = await imagegate(settings, "admin", "account", "show", "nope", expect=1)
    assert err.strip() == "error: not found: nope"
    _, err = await imagegate(settings, "admin", "key", "disable", "nope", "--json", expect=1)
    assert json.loads(err) == {"error": "not found: nope"}
    await imagegate(settings, "admin", "account", "top-up", account_id, "--", "-5", expect=1)


async def test_key_policy_flags_create_update_and_show(server: Server) -> None:
    settings = server.services.settings
    account = await admin_json(settings, "account", "create", "--name", "p", "--credits", "500")
    key = await admin_json(
        settings, "key", "create", "--account", account["id"],
        "--allow-ip", "127.0.0.1", "--allow-ip", "2001:db8::/32", "--rate-limit", "100",
        "--hourly-limit", "56", "--daily-limit", "500", "--total-limit", "1000",
        "--expires", "2099-01-01T00:00:00Z", "--model", "ideogram-v4",
    )  # fmt: skip
    assert {k: key[k] for k in ("allowed_ips", "rate_limit", "hourly_limit", "models")} == {
        "allowed_ips": ["127.0.0.1/32", "2001:db8::/32"],
        "rate_limit": 100,
        "hourly_limit": 56,
        "models": ["ideogram-v4"],
    }
    assert (key["daily_limit"], key["total_limit"]) == (500, 1000)
    assert key["expires_at"] == "2099-01-01T00:00:00Z"
    customer = Account(id=account["id"], key=key["key"], key_id=key["id"])
    for _ in range(2):
        assert (await server.create(customer)).status_code == 200
    assert (await server.create(customer)).status_code == 429  # hourly limit of 56

    shown = await admin_json(settings, "key", "show", key["id"])
    assert shown["usage"] == {
        "spent_last_hour": 56, "spent_last_day": 56, "spent_total": 56, "rate_limit_effective": 100
    }  # fmt: skip
    updated = await admin_json(
        settings, "key", "update", key["id"], "--hourly-limit", "none", "--allow-ip", "10.0.0.0/8"
    )
    assert (updated["hourly_limit"], updated["allowed_ips"]) == (None, ["10.0.0.0/8"])
    assert updated["daily_limit"] == 500  # flags not given stay as they were
    assert (await server.create(customer)).status_code == 403
    await admin_json(settings, "key", "update", key["id"], "--allow-ip", "any")
    assert (await server.create(customer)).status_code == 200


async def test_bad_policy_values_are_refused_with_a_clear_error(server: Server) -> None:
    settings = server.services.settings
    account = await admin_json(settings, "account", "create", "--name", "p")
    for flags, message in [
        (["--allow-ip", "10.0.0.300"], "not an IP address or CIDR: '10.0.0.300'"),
        (["--hourly-limit", "-3"], "hourly-limit must be a positive whole number or 'none'"),
        (["--expires", "next tuesday"], "not an ISO 8601 time: 'next tuesday'"),
        (["--model", "dall-e-3"], "unknown model(s): dall-e-3 (known: ideogram-v4)"),
    ]:
        _, err = await imagegate(
            settings, "admin", "key", "create", "--account", account["id"], *flags, expect=1
        )
        assert err.strip() == f"error: {message}"
    listed = await admin_json(settings, "key", "list", "--account", account["id"])
    assert listed["keys"] == []  # nothing half-made
