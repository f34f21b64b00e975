"""`imagegate admin user ...` as an operator runs it, and what the people it names then see in
the console."""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from cli.test_admin_cli import admin_json, imagegate
from console_support import PASSWORD, ConsoleClient, make_person
from harness import Server
from imagegate.config import Settings

LINK = re.compile(r"https?://\S+")
NEW_PASSWORD = "a passphrase of my own"


def unique_email(name: str = "p") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def link_in(line: str) -> str:
    found = LINK.findall(line)
    assert len(found) == 1, line
    return str(found[0])


async def set_password_through(server: Server, link: str) -> httpx.Response:
    """Open a one-time password link in a fresh browser and set NEW_PASSWORD."""
    path = urlsplit(link).path
    async with ConsoleClient(server) as browser:
        return await browser.submit(path, path, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})


async def new_account(settings: Settings) -> str:
    account = await admin_json(settings, "account", "create", "--name", "acme", "--credits", "7")
    return str(account["id"])


async def test_create_prints_a_link_that_sets_the_password_and_signs_in(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = server.services.settings
    monkeypatch.setenv("IMAGEGATE_PUBLIC_URL", "https://img.example.com")  # read by the command
    account_id = await new_account(settings)
    email = unique_email("ada")
    out, _ = await imagegate(
        settings, "admin", "user", "create", "--email", email.upper(), "--account", account_id
    )
    assert out.startswith("created member ")
    assert f"({email}) of account {account_id}" in out
    link = link_in(out)
    assert link.startswith("https://img.example.com/console/set-password/")

    done = await set_password_through(server, link)
    assert done.url.path == "/console"
    assert "Your password is set." in done.text
    assert "7 credits" in done.text  # the account's balance: the user acts for it
    async with ConsoleClient(server) as browser:
        again = await browser.get(urlsplit(link).path)
        assert "This link is not valid or was already used." in again.text  # one time only
        assert (await browser.sign_in(email, NEW_PASSWORD)).url.path == "/console"


async def test_create_json_and_its_errors(server: Server) -> None:
    settings = server.services.settings
    account_id = await new_account(settings)
    email = unique_email("op")
    created = await admin_json(
        settings, "user", "create", "--email", email, "--account", account_id, "--role", "operator"
    )
    assert created == {
        "id": created["id"],
        "email": email,
        "account_id": account_id,
        "role": "operator",
        "status": "active",
        "created_at": created["created_at"],
        "link": created["link"],
    }
    for args, message in [
        (["--email", email, "--account", account_id], "already exists"),
        (["--email", unique_email(), "--account", "nope"], "not found: nope"),
        (["--email", unique_email(), "--account", account_id, "--role", "boss"], "role must be"),
        (["--email", "not-an-email", "--account", account_id], "Enter an email address"),
    ]:
        _, err = await imagegate(settings, "admin", "user", "create", *args, "--json", expect=1)
        assert message in json.loads(err)["error"]


async def test_reset_password_ends_every_session_and_prints_a_new_link(server: Server) -> None:
    settings = server.services.settings
    person = await make_person(server, unique_email("bob"))
    async with ConsoleClient(server) as browser:
        assert (await browser.sign_in(person.email)).url.path == "/console"
        reset = await admin_json(settings, "user", "reset-password", person.email)
        assert reset == {"id": person.user_id, "email": person.email, "link": reset["link"]}
        assert (await browser.get("/console")).url.path == "/console/login"

    assert (await set_password_through(server, reset["link"])).url.path == "/console"
    async with ConsoleClient(server) as browser:
        assert (await browser.sign_in(person.email, PASSWORD)).status_code == 401
        assert (await browser.sign_in(person.email, NEW_PASSWORD)).url.path == "/console"
    out, _ = await imagegate(settings, "admin", "user", "reset-password", person.user_id)
    assert f"user {person.user_id} ({person.email}) signed out everywhere" in out
    _, err = await imagegate(settings, "admin", "user", "reset-password", "x@y.z", expect=1)
    assert err.strip() == "error: not found: x@y.z"


async def test_disable_ends_the_session_and_enable_lets_the_user_back(server: Server) -> None:
    settings = server.services.settings
    person = await make_person(server, unique_email("eve"))
    async with ConsoleClient(server) as browser:
        assert (await browser.sign_in(person.email)).url.path == "/console"
        disabled = await admin_json(settings, "user", "disable", person.email)
        assert disabled == {"id": person.user_id, "email": person.email, "status": "disabled"}
        assert (await browser.get("/console")).url.path == "/console/login"
        refused = await browser.sign_in(person.email)
        assert "This user has been disabled." in refused.text

        out, _ = await imagegate(settings, "admin", "user", "enable", person.user_id)
        assert out.strip() == f"user {person.user_id} ({person.email}) enabled"
        assert (await browser.sign_in(person.email)).url.path == "/console"


async def test_list_all_users_or_one_accounts(server: Server) -> None:
    settings = server.services.settings
    first = await make_person(server, unique_email("first"))
    second = await make_person(server, unique_email("second"), account_id=first.account_id)
    other = await make_person(server, unique_email("other"))

    mine = await admin_json(settings, "user", "list", "--account", first.account_id)
    assert mine["account_id"] == first.account_id
    assert [u["email"] for u in mine["users"]] == [first.email, second.email]
    assert set(mine["users"][0]) == {
        "id", "email", "account_id", "role", "status", "created_at"
    }  # fmt: skip
    everyone = await admin_json(settings, "user", "list")
    assert {first.email, second.email, other.email} <= {u["email"] for u in everyone["users"]}

    out, _ = await imagegate(settings, "admin", "user", "list", "--account", other.account_id)
    assert out.strip() == f"{other.user_id} {other.email} member active account {other.account_id}"
    empty = await new_account(settings)
    out, _ = await imagegate(settings, "admin", "user", "list", "--account", empty)
    assert out.strip() == "no users"
    await imagegate(settings, "admin", "user", "list", "--account", "nope", expect=1)


async def test_invite_prints_a_sign_up_link_into_the_account(server: Server) -> None:
    settings = server.services.settings
    account_id = await new_account(settings)
    invite = await admin_json(settings, "user", "invite", "--account", account_id)
    assert invite == {"account_id": account_id, "role": "member", "link": invite["link"]}
    link = urlsplit(invite["link"])
    assert link.path == "/console/signup"
    assert link.query.startswith("invite=")
    email = unique_email("invited")
    async with ConsoleClient(server) as browser:
        page = f"{link.path}?{link.query}"
        joined = await browser.submit(
            page,
            "/console/signup",
            {
                "email": email,
                "password": PASSWORD,
                "confirm": PASSWORD,
                "invite": link.query.removeprefix("invite="),
            },
        )
        assert joined.url.path == "/console"
    listed = await admin_json(settings, "user", "list", "--account", account_id)
    assert [(u["email"], u["role"]) for u in listed["users"]] == [(email, "member")]

    out, _ = await imagegate(settings, "admin", "user", "invite", "--role", "operator")
    assert out.startswith("invite link for a new operator with an account of their own, valid 7")
    _, err = await imagegate(settings, "admin", "user", "invite", "--role", "boss", expect=1)
    assert err.strip() == "error: role must be one of member, operator"
    await imagegate(settings, "admin", "user", "invite", "--account", "nope", expect=1)
