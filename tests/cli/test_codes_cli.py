"""`imagegate admin codes ...` as an operator runs it: a batch's codes printed once, batches
listed with their redeemed counts, a batch shown by hint; and the printed codes work."""

from __future__ import annotations

import json
import re

from cli.test_admin_cli import admin_json, imagegate
from harness import Server
from imagegate.billing import codes

SHAPE = re.compile(r"^IG(-[0-9A-HJKMNP-TV-Z]{5}){6}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def redeem(server: Server, account_id: str, code: str) -> None:
    async with server.services.db.transaction() as session:
        await codes.redeem(session, account_id, code, server.clock.now())


async def test_create_prints_the_codes_once_and_they_work(server: Server) -> None:
    settings = server.services.settings
    made = await admin_json(
        settings, "codes", "create", "--credits", "500", "--count", "100",
        "--expires", "2099-01-01T00:00:00Z", "--note", "spring promo",
    )  # fmt: skip
    assert set(made) == {"batch_id", "credits", "count", "expires_at", "codes"}
    assert (made["credits"], made["count"], made["expires_at"]) == (
        500, 100, "2099-01-01T00:00:00Z",
    )  # fmt: skip
    assert len(made["codes"]) == len(set(made["codes"])) == 100
    assert all(SHAPE.match(code) for code in made["codes"])

    account = await server.account(credits=3)
    await redeem(server, account.id, made["codes"][41])
    assert await server.ledger(account) == (503, 503)

    out, _ = await imagegate(settings, "admin", "codes", "create", "--credits", "5", "--count", "2")
    header, *printed = out.splitlines()
    assert header.startswith("created batch ")
    assert header.endswith(": 2 codes of 5 credits, expires never; they are not shown again:")
    assert len(printed) == 2
    assert all(SHAPE.match(code) for code in printed)


async def test_list_and_show_name_codes_by_hint_never_in_full(server: Server) -> None:
    settings = server.services.settings
    first = await admin_json(settings, "codes", "create", "--credits", "7", "--count", "3")
    second = await admin_json(
        settings, "codes", "create", "--credits", "9", "--count", "2", "--note", "team"
    )
    account = await server.account(credits=0)
    await redeem(server, account.id, first["codes"][1])

    listed = await admin_json(settings, "codes", "list")
    assert [b["batch_id"] for b in listed["batches"]] == [second["batch_id"], first["batch_id"]]
    older = listed["batches"][1]
    assert set(older) == {
        "batch_id", "credits", "count", "redeemed", "note", "created_at", "expires_at"
    }  # fmt: skip
    assert (older["credits"], older["count"], older["redeemed"], older["note"]) == (7, 3, 1, "")
    assert older["expires_at"] is None
    assert ISO.match(older["created_at"])
    out, _ = await imagegate(settings, "admin", "codes", "list")
    lines = out.splitlines()
    assert lines[0].startswith(f"{second['batch_id']} (team): 2 codes of 9 credits, 0 redeemed")
    assert lines[1] == f"{first['batch_id']}: 3 codes of 7 credits, 1 redeemed, expires never"

    shown = await admin_json(settings, "codes", "show", first["batch_id"])
    assert shown["redeemed"] == 1
    assert [c["hint"] for c in shown["codes"]] == sorted(c[-4:] for c in first["codes"])
    used = [c for c in shown["codes"] if c["redeemed_at"]]
    body = codes.normalise(first["codes"][1]) or ""
    assert used == [
        {
            "id": codes.code_id(body),
            "hint": body[-4:],
            "redeemed_at": used[0]["redeemed_at"],
            "account_id": account.id,
        }
    ]
    assert ISO.match(used[0]["redeemed_at"])
    out, _ = await imagegate(settings, "admin", "codes", "show", first["batch_id"])
    assert f"  …{body[-4:]} redeemed {used[0]['redeemed_at']} by account {account.id}" in out
    assert out.count(" unused") == 2
    text = json.dumps(shown) + json.dumps(listed) + out
    assert not any(code in text or code[3:].replace("-", "") in text for code in first["codes"])


async def test_errors_exit_1_with_a_reason(server: Server) -> None:
    settings = server.services.settings
    for args, message in [
        (("--credits", "0", "--count", "1"), "Credits per code must be a whole number from 1"),
        (("--credits", "5", "--count", "0"), "The number of codes must be a whole number from 1"),
        (("--credits", "5", "--count", "10001"), "from 1 to 10000."),
        (("--credits", "5", "--count", "1", "--expires", "2001-01-01"), "must be in the future"),
        (("--credits", "5", "--count", "1", "--expires", "soon"), "not an ISO 8601 time"),
    ]:
        _, err = await imagegate(settings, "admin", "codes", "create", *args, "--json", expect=1)
        assert message in json.loads(err)["error"]
    _, err = await imagegate(settings, "admin", "codes", "show", "no-such-batch", expect=1)
    assert err.strip() == "error: not found: no-such-batch"
    assert await admin_json(settings, "codes", "list") == {"batches": []}
