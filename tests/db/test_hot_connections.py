"""The request path's own connections: a dropped PostgreSQL connection is replaced without a failed
request, and the charging write re-checks the key and the ban that authentication saw."""

from __future__ import annotations

import psycopg
import pytest

from harness import BACKEND, Server
from imagegate.billing import service as billing
from imagegate.db.pg_hot import conninfo
from imagegate.errors import InsufficientCredits, InvalidApiKey
from imagegate.keys.service import set_key_status
from imagegate.users.service import set_account_banned


async def test_gets_go_on_after_the_server_drops_every_connection(server: Server) -> None:
    if BACKEND != "postgres":
        pytest.skip("PostgreSQL connections")
    account = await server.account()
    task = await server.run(account)
    for _ in range(5):  # several connections in the pool, all idle afterwards
        assert (await server.task(account, task["id"]))["status"] == "completed"
    url = server.services.db.url
    async with await psycopg.AsyncConnection.connect(conninfo(url), autocommit=True) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    assert (await server.task(account, task["id"]))["status"] == "completed"
    assert (await server.create(account)).status_code == 200


async def charge(server: Server, account_id: str, key_id: str) -> None:
    now = server.clock.now()
    await server.services.db.write(
        lambda tx: billing.charge(
            tx, account_id, key_id, "t-1", 16, now, queue=server.services.queue
        )
    )


async def test_the_charge_refuses_a_key_disabled_or_an_account_banned_meanwhile(
    server: Server,
) -> None:
    account = await server.account(credits=100)
    async with server.services.db.transaction() as session:
        await set_key_status(session, account.key_id, "disabled")
    with pytest.raises(InvalidApiKey):
        await charge(server, account.id, account.key_id)
    other = await server.account(credits=100)
    async with server.services.db.transaction() as session:
        await set_account_banned(session, other.id, True)
    with pytest.raises(InvalidApiKey):
        await charge(server, other.id, other.key_id)
    poor = await server.account(credits=10)
    with pytest.raises(InsufficientCredits):
        await charge(server, poor.id, poor.key_id)
    for refused in (account, other, poor):
        assert await server.ledger(refused) in ((100, 100), (10, 10))
