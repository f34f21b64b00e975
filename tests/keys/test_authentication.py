"""401 invalid_api_key for every way a key can be wrong, checked on every request."""

from __future__ import annotations

import pytest

from harness import Server
from imagegate.billing.service import set_banned
from imagegate.db.models import ApiKey
from imagegate.keys.service import set_key_status

ENDPOINTS = [("GET", "/v1/credits"), ("POST", "/v1/images/generations"), ("GET", "/v1/tasks/x")]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Basic c2stYWJj",
        "Bearer pk-0123456789012345678901234567890123456789",
        "Bearer 0123456789012345678901234567890123456789",
        "Bearer sk-this-key-was-never-issued-0123456789012345",
        "sk-missing-the-scheme-0123456789012345678901234",
    ],
)
async def test_missing_or_bad_keys_are_401(
    server: Server, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await server.http.request(method, path, headers=headers, json={"model": "x"})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["type"] == "authentication_error"
    assert "sk-" not in error["message"].replace("'sk-", "").replace("sk-...", "")


async def test_disabled_deleted_and_banned_are_refused_on_the_next_request(server: Server) -> None:
    account = await server.account()
    assert (await server.http.get("/v1/credits", headers=account.headers)).status_code == 200

    async def set_status(status: str) -> None:
        async with server.services.db.transaction() as session:
            await set_key_status(session, account.key_id, status)

    async def status_code() -> int:
        return (await server.http.get("/v1/credits", headers=account.headers)).status_code

    await set_status("disabled")
    assert await status_code() == 401
    await set_status("active")
    assert await status_code() == 200
    async with server.services.db.transaction() as session:
        await set_banned(session, account.id, True)
    assert await status_code() == 401
    async with server.services.db.transaction() as session:
        await set_banned(session, account.id, False)
    assert await status_code() == 200
    await set_status("deleted")
    assert await status_code() == 401
    with pytest.raises(LookupError):
        await set_status("active")  # a deleted key stays deleted
    assert await status_code() == 401


async def test_keys_are_stored_only_as_hashes(server: Server) -> None:
    account = await server.account()
    assert account.key.startswith("sk-")
    assert len(account.key) >= 43
    async with server.services.db.sessions() as session:
        row = await session.get(ApiKey, account.key_id)
    assert row is not None
    assert account.key not in (row.key_hash, row.prefix, row.name)
    assert row.key_hash == server.services.hasher.hash(account.key)
    assert len(row.key_hash) == 64


async def test_lowercase_bearer_scheme_is_accepted(server: Server) -> None:
    account = await server.account()
    response = await server.http.get(
        "/v1/credits", headers={"Authorization": f"bearer {account.key}"}
    )
    assert response.status_code == 200
