"""The request path's own connections: a dropped PostgreSQL connection is replaced without a failed
request, and the charging write re-checks the key and the ban that authentication saw."""

from __future__ import annotations

import psycopg
import pytest

from harness import BACKEND, Account, Server
from imagegate.billing import alerts
from imagegate.billing import service as billing
from imagegate.catalog import IDEOGRAM_V4
from imagegate.db.pg_hot import conninfo
from imagegate.errors import InsufficientCredits, InvalidApiKey
from imagegate.keys.service import Principal, set_key_status
from imagegate.tasks import service
from imagegate.tasks.schemas import parse_create_request
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


async def tasks_of(server: Server, account: Account) -> list[str]:
    """The ids of the account's tasks, as the database holds them."""
    rows = await server.services.db.read(
        lambda tx: tx.all("SELECT id FROM tasks WHERE account_id = :a", {"a": account.id})
    )
    return [row[0] for row in rows]


async def all_jobs(server: Server) -> list[tuple[str, str]]:
    """(task id, lock) of every task's job procrastinate holds, whatever its status, in order."""
    rows = await server.services.db.read(
        lambda tx: tx.all(
            "SELECT args->>'task_id', lock FROM procrastinate_jobs"
            " WHERE task_name = 'run_task' ORDER BY id"
        )
    )
    return [(row[0], row[1]) for row in rows]


PRICE = IDEOGRAM_V4.price("BALANCED")  # a create's, at its default speed


async def create_in_one(server: Server, *accounts: Account) -> list[str | None]:
    """tasks/service.py's grouped create: a create for each of ``accounts`` (an account may
    come more than once), in one statement; the id of each task created, else None."""
    services, now = server.services, server.clock.now()
    model = (await services.catalog.fresh())["ideogram-v4"]
    body = parse_create_request(b'{"model": "ideogram-v4", "input": {"prompt": "a cat"}}')
    tasks = [
        service.new_task(Principal(account.key_id, account.id), body, now, model)
        for account in accounts
    ]
    creates = [(task, service.run_job(services.queue, task)) for task in tasks]
    taken = await services.db.write(
        lambda tx: service.create_tasks_in_one(tx, services.queue, creates), one_statement=True
    )
    return [task.id if task.id in taken else None for task in tasks]


async def test_creates_in_one_statement_write_nothing_unless_their_charge_is_taken(
    server: Server,
) -> None:
    """PostgreSQL's grouped create: a key disabled or an account banned since authentication,
    too few credits for all of an account's creates in the statement, or an account with a
    low-balance alert (whose crossing takes statements of its own) get no task, job or ledger
    entry from it, whatever else the statement carries; those creates then go through their
    transaction (tasks/admission.py), which says why or tells the account."""
    if BACKEND != "postgres":
        pytest.skip("SQLite creates in its group commit's savepoints")
    disabled = await server.account(credits=100)
    async with server.services.db.transaction() as session:
        await set_key_status(session, disabled.key_id, "disabled")
    banned = await server.account(credits=100)
    async with server.services.db.transaction() as session:
        await set_account_banned(session, banned.id, True)
    poor = await server.account(credits=1)
    short = await server.account(credits=2 * PRICE - 1)  # enough for one create, not two
    alerted = await server.account(credits=100)
    async with server.services.db.transaction() as session:
        settings = alerts.AlertSettings(threshold=10, webhook_url=None)
        now = server.clock.now()
        await alerts.save_settings(session, server.services.queue, alerted.id, settings, now)
    paying = await server.account(credits=100)
    jobs_before = await all_jobs(server)

    refused = (disabled, banned, poor, short, short, alerted)
    created = await create_in_one(server, paying, *refused, paying)
    assert created[1:-1] == [None] * len(refused)
    first, last = created[0], created[-1]
    assert first is not None
    assert last is not None
    new_jobs = (await all_jobs(server))[len(jobs_before) :]
    assert sorted(new_jobs) == sorted([(first, f"task:{first}"), (last, f"task:{last}")])
    for account in refused:
        assert await tasks_of(server, account) == []
    assert await server.ledger(disabled) == (100, 100)
    assert await server.ledger(banned) == (100, 100)
    assert await server.ledger(poor) == (1, 1)
    assert await server.ledger(short) == (2 * PRICE - 1, 2 * PRICE - 1)
    assert await server.ledger(alerted) == (100, 100)
    assert (await server.create(alerted)).status_code == 200  # through the transaction
    assert (await server.create(short)).status_code == 200

    assert sorted(await tasks_of(server, paying)) == sorted([first, last])
    balance, entries = await server.ledger(paying)
    assert balance == entries == 100 - 2 * PRICE
