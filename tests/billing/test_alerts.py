"""Low-balance alerts as an account sees them: set in the console, crossed by tasks created
through the API, told once per fall below the threshold by a signed account.low_balance event
that a real receiver gets (retried like task callbacks), and cheap on the request path."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event
from standardwebhooks.webhooks import Webhook

from console_support import ConsoleClient, make_person
from harness import BACKEND, Account, Server, running_server, wait_for
from imagegate.billing import alerts
from imagegate.billing import service as billing
from imagegate.callbacks.service import CALLBACKS_QUEUE
from imagegate.config import Settings
from imagegate.db.models import Account as AccountRow
from imagegate.db.sql import SessionTx
from imagegate.jobs.admin import list_jobs
from imagegate.keys.service import create_key
from receiver import Received, Receiver, running_receiver

TURBO = 16  # credits per TURBO task


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    """Receivers listen on loopback, so private addresses are allowed here."""
    async with running_server(settings.model_copy(update={"callback_allow_private": True})) as s:
        yield s


async def alerted_account(
    server: Server, email: str, credits: int, threshold: int | None, url: str | None
) -> Account:
    """A person whose console sets the alert, and an API key of their account."""
    person = await make_person(server, email, credits=credits)
    async with ConsoleClient(server) as console:
        await console.sign_in(person.email)
        page = await console.submit(
            "/console/billing",
            "/console/billing/alerts",
            {"threshold": "" if threshold is None else str(threshold), "webhook_url": url or ""},
        )
        assert page.status_code == 200, page.text
        assert "Low-balance alert" in page.text
    async with server.services.db.transaction() as session:
        key, plaintext = await create_key(
            session, server.services.hasher, person.account_id, "alerts", server.clock.now()
        )
    return Account(person.account_id, plaintext, key.id)


async def turbo(server: Server, account: Account, count: int = 1) -> None:
    for _ in range(count):
        response = await server.create(account, rendering_speed="TURBO")
        assert response.status_code == 200, response.text


async def event_jobs(server: Server) -> list[dict[str, Any]]:
    jobs = await server.jobs(queue=CALLBACKS_QUEUE)
    return [job.args for job in reversed(jobs) if job.kind == alerts.DELIVER_ACCOUNT_EVENT]


async def delivered_all(server: Server) -> None:
    """Wait until no event job is left (each is deleted once its attempt is made)."""

    async def none_left() -> bool:
        return not await event_jobs(server)

    await wait_for(none_left)


async def secret_of(server: Server, account: Account) -> str:
    response = await server.http.get("/v1/webhooks/secret", headers=account.headers)
    assert response.status_code == 200, response.text
    secret: str = response.json()["data"]["secret"]
    return secret


async def notified(server: Server, account: Account) -> bool:
    async with server.services.db.sessions() as session:
        row = await session.get(AccountRow, account.id)
        assert row is not None
        return row.low_balance_notified


def body_of(received: Received) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(received.body)
    return body


async def test_a_crossing_sends_one_signed_event_and_tasks_below_send_no_more(
    server: Server,
) -> None:
    async with running_receiver() as receiver:
        account = await alerted_account(server, "low@example.com", 100, 60, receiver.url)
        await turbo(server, account, 2)  # 100 -> 68: still above
        assert await event_jobs(server) == []
        await turbo(server, account)  # 68 -> 52: crosses 60
        (received,) = await receiver.count(1)
        await turbo(server, account, 2)  # 52 -> 20: below, already told
        await delivered_all(server)
    assert len(receiver.received) == 1
    headers = received.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-event"] == "account.low_balance"
    assert headers["webhook-id"].startswith("msg_")
    assert abs(int(headers["webhook-timestamp"]) - server.clock.now()) < 5
    verified = Webhook(await secret_of(server, account)).verify(received.body, headers)
    assert verified == body_of(received)
    assert set(verified) == {"type", "account_id", "balance", "threshold", "created_at"}
    assert verified["type"] == "account.low_balance"
    assert verified["account_id"] == account.id
    assert (verified["balance"], verified["threshold"]) == (52, 60)
    assert abs(verified["created_at"] - server.clock.now()) < 5
    assert await notified(server, account)
    assert await server.ledger(account) == (20, 20)


async def test_a_top_up_above_and_a_new_crossing_send_a_second_event(server: Server) -> None:
    async with running_receiver() as receiver:
        account = await alerted_account(server, "again@example.com", 70, 60, receiver.url)
        await turbo(server, account)  # 70 -> 54
        (first,) = await receiver.count(1)
        async with server.services.db.transaction() as session:
            await billing.top_up(session, account.id, 20, server.clock.now())  # 74
        await turbo(server, account)  # 74 -> 58: a new crossing
        second = (await receiver.count(2))[1]
        await delivered_all(server)
        await turbo(server, account)  # 58 -> 42: still the same fall
        await delivered_all(server)
    assert len(receiver.received) == 2
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
    assert (body_of(first)["balance"], body_of(second)["balance"]) == (54, 58)
    assert await server.ledger(account) == (42, 42)


async def test_a_refund_above_the_threshold_arms_the_alert_again(server: Server) -> None:
    async with running_receiver() as receiver:
        account = await alerted_account(server, "refund@example.com", 70, 60, receiver.url)
        failing = await server.create(
            account, rendering_speed="TURBO", prompt="x [simulate:upstream_error]"
        )  # 70 -> 54, then refunded to 70
        assert failing.status_code == 200
        await server.wait_final(account, failing.json()["data"]["taskId"])
        await receiver.count(1)
        await turbo(server, account)  # 70 -> 54: below again after being above
        await receiver.count(2)
        await delivered_all(server)
    assert len(receiver.received) == 2


async def walk_retries(server: Server, receiver: Receiver, attempts: int) -> None:
    """Drive the callback schedule (0, +180 s, +600 s) through the clock: each retry is a job
    planned after the failed attempt, due that many seconds later."""
    for number, delay in [(2, 180), (3, 600)][: attempts - 1]:
        await wait_for(lambda n=number: _planned(server, n))
        server.clock.advance(delay - 5)
        assert len(receiver.received) == number - 1  # not yet due
        server.clock.advance(5)
        await receiver.count(number)


async def _planned(server: Server, number: int) -> bool:
    return any(args["number"] == number for args in await event_jobs(server))


async def test_a_failing_receiver_gets_retries_with_the_same_webhook_id(server: Server) -> None:
    async with running_receiver(lambda n: 500 if n == 1 else 204) as receiver:
        account = await alerted_account(server, "retry@example.com", 70, 60, receiver.url)
        await turbo(server, account)
        await receiver.count(1)
        await walk_retries(server, receiver, attempts=2)
        await delivered_all(server)
    first, second = receiver.received
    assert (first.answered, second.answered) == (500, 204)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.received]
    assert stamps[1] - stamps[0] in (179, 180, 181)
    secret = await secret_of(server, account)
    for received in receiver.received:
        Webhook(secret).verify(received.body, received.headers)


async def test_a_receiver_that_keeps_failing_gets_three_attempts_then_a_log_line(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="imagegate.callbacks.account_events")
    async with running_receiver(lambda _n: 503) as receiver:
        account = await alerted_account(server, "down@example.com", 70, 60, receiver.url)
        await turbo(server, account)
        await receiver.count(1)
        await walk_retries(server, receiver, attempts=3)
        await delivered_all(server)
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    (line,) = [r for r in caplog.records if "account.low_balance" in r.getMessage()]
    assert "failed after 3 attempts: HTTP 503" in line.getMessage()
    assert account.id in line.getMessage()
    assert receiver.url not in line.getMessage()


async def test_without_a_webhook_url_only_the_banner_tells(server: Server) -> None:
    account = await alerted_account(server, "quiet@example.com", 70, 60, None)
    await turbo(server, account)  # 70 -> 54
    assert await notified(server, account)
    assert await event_jobs(server) == []  # deferred in the charge's transaction, or never


async def test_concurrent_creates_crossing_the_threshold_send_one_event(server: Server) -> None:
    async with running_receiver() as receiver:
        account = await alerted_account(
            server, "burst@example.com", 20 * TURBO + 8, 170, receiver.url
        )
        responses = await asyncio.gather(
            *[server.create(account, rendering_speed="TURBO") for _ in range(20)]
        )
        assert [r.status_code for r in responses] == [200] * 20
        await receiver.count(1)
        await delivered_all(server)
    assert len(receiver.received) == 1
    assert body_of(receiver.received[0])["balance"] == 168  # the one charge that crossed 170
    assert await server.ledger(account) == (8, 8)


async def test_a_new_threshold_above_the_balance_tells_at_once_and_only_once(
    server: Server,
) -> None:
    async with running_receiver() as receiver:
        person = await make_person(server, "above@example.com", credits=100)
        async with ConsoleClient(server) as console:
            await console.sign_in(person.email)

            async def save(threshold: str) -> str:
                data = {"threshold": threshold, "webhook_url": receiver.url}
                page = await console.submit("/console/billing", "/console/billing/alerts", data)
                assert page.status_code == 200, page.text
                return page.text

            assert "on its way to your webhook URL" in await save("200")
            (received,) = await receiver.count(1)
            assert "on its way" not in await save("200")  # the same settings saved again
            assert "already below it." in await save("150")  # told already, under 200
            await delivered_all(server)
            assert len(receiver.received) == 1
            assert "already below" not in await save("50")  # above: armed again
            assert "on its way" in await save("120")  # below again: told again
            await receiver.count(2)
            await delivered_all(server)
    assert (body_of(received)["balance"], body_of(received)["threshold"]) == (100, 200)
    assert body_of(receiver.received[1])["threshold"] == 120
    assert len(receiver.received) == 2


@pytest.mark.parametrize(
    ("balance", "price", "threshold", "told", "crossed"),
    [
        (52, 16, 60, False, True),  # from 68 to 52
        (52, 16, 60, True, True),  # a new fall: the flag from an earlier fall does not matter
        (44, 16, 60, False, True),  # at 60 exactly before: at or above counts
        (43, 16, 60, True, False),  # below before and after, told
        (43, 16, 60, False, True),  # below, never told (an operator took credits)
        (60, 16, 60, False, False),  # at the threshold is not below it
        (0, 16, 1, True, True),
    ],
)
def test_what_counts_as_crossing(
    balance: int, price: int, threshold: int, told: bool, crossed: bool
) -> None:
    assert alerts.crossed(balance, price, threshold, told) is crossed


class RolledBack(Exception):
    pass


async def one_charge(
    server: Server, account: Account, price: int
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The SQL statements one charge() runs and the jobs it adds (kind, queue, status), in a
    transaction rolled back."""
    seen: list[str] = []

    def note(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if conn is mine:  # not the in-process worker's polling beside it
            seen.append(statement.split()[0].upper())

    engine = server.services.db.engine.sync_engine
    jobs: list[tuple[str, str, str]] = []
    with contextlib.suppress(RolledBack):
        async with server.services.db.transaction() as session:
            before = {job.id for job in await list_jobs(session)}
            mine = (await session.connection()).sync_connection
            event.listen(engine, "before_cursor_execute", note)
            try:
                await billing.charge(
                    SessionTx(session), account.id, account.key_id, "t", price,
                    server.clock.now(), queue=server.services.queue,
                )  # fmt: skip
            finally:
                event.remove(engine, "before_cursor_execute", note)
            jobs = [
                (job.kind, job.queue, job.status)
                for job in await list_jobs(session)
                if job.id not in before
            ]
            raise RolledBack
    return seen, jobs


async def test_a_charge_is_its_update_and_entry_unless_it_crosses(server: Server) -> None:
    account = await server.account(credits=100)
    # the balance (threshold read back) and the ledger entry: one statement on PostgreSQL
    charge = ["WITH"] if BACKEND == "postgres" else ["UPDATE", "INSERT"]
    assert await one_charge(server, account, 16) == (charge, [])  # no threshold
    async with server.services.db.transaction() as session:
        await alerts.save_settings(
            session,
            server.services.queue,
            account.id,
            alerts.AlertSettings(threshold=50, webhook_url="https://example.com/hook"),
            server.clock.now(),
        )
    assert await one_charge(server, account, 16) == (charge, [])  # 84: above
    statements, (job,) = await one_charge(server, account, 60)  # 40: crosses
    # + told, + the event's job (procrastinate's defer function, whose trigger sends NOTIFY)
    defer = "SELECT" if BACKEND == "postgres" else "INSERT"
    assert statements == [*charge, "UPDATE", defer]
    assert job == (alerts.DELIVER_ACCOUNT_EVENT, CALLBACKS_QUEUE, "todo")


async def test_the_first_attempt_waits_the_schedules_first_delay(settings: Settings) -> None:
    delayed = settings.model_copy(
        update={"callback_allow_private": True, "callback_retry_delays": (30.0, 180.0)}
    )
    async with running_server(delayed) as server, running_receiver() as receiver:
        account = await alerted_account(server, "wait@example.com", 70, 60, receiver.url)
        await turbo(server, account)
        crossed_at = server.clock.now()

        async def postponed() -> bool:
            jobs = await server.jobs(queue=CALLBACKS_QUEUE)
            due = [job.due_at for job in jobs if job.kind == alerts.DELIVER_ACCOUNT_EVENT]
            return bool(due) and due[0] is not None and due[0] > crossed_at + 25

        await wait_for(postponed)
        assert receiver.received == []
        server.clock.advance(30)
        await receiver.count(1)
        await delivered_all(server)
    assert len(receiver.received) == 1
