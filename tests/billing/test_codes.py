"""Redemption codes, the rules: a typeable format with enough randomness, only hashes stored,
batch limits, and redemptions that credit once (concurrently too), with the ledger to show."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from harness import Server
from imagegate.billing import codes
from imagegate.db.models import CodeBatch, LedgerEntry, RedemptionCode

SHAPE = re.compile(r"^IG(-[0-9A-HJKMNP-TV-Z]{5}){6}$")  # Crockford's base32: no I, L, O, U
NOW = 1_780_000_000.0
JAN_2027 = datetime(2027, 1, 1, tzinfo=UTC).timestamp()


def spec(
    credits: int = 500, count: int = 3, expires_at: float | None = None, note: str = ""
) -> codes.BatchSpec:
    return codes.BatchSpec(credits=credits, count=count, expires_at=expires_at, note=note)


async def make_batch(server: Server, batch: codes.BatchSpec | None = None) -> codes.NewBatch:
    async with server.services.db.transaction() as session:
        return await codes.create_batch(session, batch or spec(), server.clock.now())


async def redeem(server: Server, account_id: str, typed: str) -> codes.Redeemed:
    async with server.services.db.transaction() as session:
        return await codes.redeem(session, account_id, typed, server.clock.now())


async def ledger_entries(server: Server, account_id: str) -> list[LedgerEntry]:
    async with server.services.db.sessions() as session:
        return list(
            await session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.account_id == account_id)
                .order_by(LedgerEntry.id)
            )
        )


def test_codes_are_typeable_and_carry_more_than_128_random_bits() -> None:
    made = [codes.display(codes.new_code()) for _ in range(2000)]
    assert all(SHAPE.match(code) for code in made), made[:3]
    assert len(set(made)) == len(made)
    assert codes.LENGTH * 5 >= 128 + codes.HINT_SIZE * 5  # even knowing the hint
    # Every character of the alphabet turns up in every position: nothing is fixed.
    for position in (3, 21, 37):
        assert {code[position] for code in made} == set(codes.ALPHABET)


def test_typing_is_forgiving_but_nothing_else_is_a_code() -> None:
    body = codes.new_code()
    code = codes.display(body)
    same = [
        code,
        code.lower(),
        code.replace("-", ""),
        code.replace("-", " "),
        code[3:],  # without the prefix
        f"  {code.lower()}\n",
        code.replace("-", "\u2013"),  # dashes from a word processor
    ]
    assert {codes.normalise(typed) for typed in same} == {body}
    # O, I and L are read as the digits they look like.
    assert codes.normalise("IG-OOOOO-IIIII-LLLLL-00000-11111-22222") == (
        "000001111111111000001111122222"
    )
    for wrong in ("", code[:-1], code + "0", code.replace(code[-1], "U"), "x" * 200, code + "!"):
        assert codes.normalise(wrong) is None, wrong
    assert codes.code_id(body) == hashlib.sha256(body.encode()).hexdigest()


def test_batch_limits() -> None:
    good = codes.parse_batch("500", " 100 ", "2027-01-01T00:00:00Z", "  spring promo ", NOW)
    assert good == codes.BatchSpec(500, 100, JAN_2027, "spring promo")
    assert codes.parse_batch(1, 10_000, "", "", NOW) == codes.BatchSpec(1, 10_000, None, "")
    naive = codes.parse_batch(1, 1, "2027-01-01T00:00", "", NOW)  # the console's field: UTC
    assert naive.expires_at == JAN_2027
    refused = {
        ("0", "1", "", ""): "Credits per code must be a whole number from 1 to 1000000000.",
        ("-5", "1", "", ""): "Credits per code must be a whole number from 1 to 1000000000.",
        ("2.5", "1", "", ""): "Credits per code must be a whole number from 1 to 1000000000.",
        ("1", "0", "", ""): "The number of codes must be a whole number from 1 to 10000.",
        ("1", "10001", "", ""): "The number of codes must be a whole number from 1 to 10000.",
        ("1", "", "", ""): "The number of codes must be a whole number from 1 to 10000.",
        ("1", "1", "soon", ""): "The expiry 'soon' is not an ISO 8601 time, such as "
        "2027-01-01T00:00:00Z.",
        ("1", "1", "2020-01-01", ""): "The expiry must be in the future.",
        ("1", "1", "", "n" * 201): "Keep the note under 200 characters.",
    }
    for args, message in refused.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            codes.parse_batch(*args, NOW)


async def test_only_hashes_and_hints_are_stored(server: Server) -> None:
    made = await make_batch(server, spec(count=5, note="launch"))
    assert len(made.codes) == 5
    async with server.services.db.sessions() as session:
        batch = await session.get(CodeBatch, made.batch.id)
        rows = list(await session.scalars(select(RedemptionCode)))
    assert batch is not None
    assert (batch.credits, batch.count, batch.note) == (500, 5, "launch")
    bodies = [codes.normalise(code) or "" for code in made.codes]
    assert sorted(r.id for r in rows) == sorted(codes.code_id(b) for b in bodies)
    assert {r.hint for r in rows} == {b[-4:] for b in bodies}
    stored = " ".join(f"{r.id} {r.hint} {r.batch_id}" for r in rows)
    assert not any(
        body in stored or code in stored for body, code in zip(bodies, made.codes, strict=True)
    )
    assert all(r.redeemed_at is None and r.account_id is None for r in rows)


async def test_a_code_credits_once_with_a_ledger_entry(server: Server) -> None:
    mine, theirs = await server.account(credits=10), await server.account(credits=0)
    made = await make_batch(server, spec(credits=500, note="spring promo"))
    code = made.codes[1]
    done = await redeem(server, mine.id, code.lower().replace("-", " "))
    assert (done.credits, done.balance, done.hint) == (500, 510, code[-4:])
    entry = (await ledger_entries(server, mine.id))[-1]
    body = codes.normalise(code) or ""
    assert (entry.kind, entry.amount, entry.source, entry.reference) == (
        "top_up",
        500,
        "code",
        codes.code_id(body),
    )
    assert entry.note == f"Redemption code …{code[-4:]} (batch spring promo)"
    for account_id in (mine.id, theirs.id):  # used: by anyone, however typed
        with pytest.raises(codes.UsedCode, match="^This code was already used.$"):
            await redeem(server, account_id, code)
    assert await server.ledger(mine) == (510, 510)
    assert await server.ledger(theirs) == (0, 0)
    async with server.services.db.sessions() as session:
        row = await session.get(RedemptionCode, codes.code_id(body))
        batch = await codes.get_batch(session, made.batch.id)
    assert row is not None
    assert (row.account_id, row.redeemed_at) == (mine.id, pytest.approx(server.clock.now(), abs=5))
    assert (batch.count, batch.redeemed) == (3, 1)
    await redeem(server, theirs.id, made.codes[0])  # the batch's other codes still work
    assert await server.ledger(theirs) == (500, 500)


async def test_unknown_and_expired_codes_credit_nothing(server: Server) -> None:
    account = await server.account(credits=7)
    expires = server.clock.now() + 3600
    made = await make_batch(server, spec(expires_at=expires))
    unknown = codes.display(codes.new_code())
    for typed in (unknown, "IG-12345", "", "hello"):
        with pytest.raises(codes.UnknownCode, match="^No such code. Check it and try again.$"):
            await redeem(server, account.id, typed)
    server.clock.advance(3600)
    day = datetime.fromtimestamp(expires, UTC)
    with pytest.raises(codes.ExpiredCode) as expired:
        await redeem(server, account.id, made.codes[0])
    assert str(expired.value) == f"This code expired on {day:%Y-%m-%d %H:%M} UTC."
    assert await server.ledger(account) == (7, 7)
    # A midnight expiry reads as a day; a note-less batch is named by its id in the ledger.
    assert str(codes.ExpiredCode(JAN_2027)) == "This code expired on 2027-01-01."
    plain = await make_batch(server, spec(credits=3))
    await redeem(server, account.id, plain.codes[0])
    note = (await ledger_entries(server, account.id))[-1].note
    assert note == f"Redemption code …{plain.codes[0][-4:]} (batch {plain.batch.id})"


async def test_fifty_concurrent_redemptions_of_one_code_credit_once(server: Server) -> None:
    accounts = [await server.account(credits=1) for _ in range(50)]
    code = (await make_batch(server, spec(credits=250, count=1))).codes[0]

    async def attempt(account_id: str) -> str:
        try:
            await redeem(server, account_id, code)
        except codes.UsedCode:
            return "used"
        return "credited"

    outcomes = await asyncio.gather(*(attempt(a.id) for a in accounts))
    assert sorted(outcomes) == ["credited"] + ["used"] * 49
    winner = accounts[outcomes.index("credited")]
    for account in accounts:
        expected = 251 if account is winner else 1
        assert await server.ledger(account) == (expected, expected)
    async with server.services.db.sessions() as session:
        credits = list(
            await session.scalars(select(LedgerEntry).where(LedgerEntry.source == "code"))
        )
    assert [(e.account_id, e.amount) for e in credits] == [(winner.id, 250)]


async def test_batches_list_newest_first_with_redeemed_counts(server: Server) -> None:
    account = await server.account(credits=0)
    first = await make_batch(server, spec(count=2, note="first"))
    server.clock.advance(60)
    second = await make_batch(server, spec(count=4))
    await redeem(server, account.id, first.codes[0])
    await redeem(server, account.id, second.codes[3])
    await redeem(server, account.id, second.codes[2])
    async with server.services.db.sessions() as session:
        rows = await codes.list_batches(session)
        listed = await codes.batch_codes(session, second.batch.id)
        with pytest.raises(codes.BatchNotFound):
            await codes.get_batch(session, "no-such-batch")
        assert (
            await codes.check_batch_codes(session, first.batch.id, [c.lower() for c in first.codes])
            == first.codes
        )
        for wrong in ([], [*first.codes, second.codes[0]], ["IG-1"]):
            with pytest.raises(ValueError, match="These are not the codes of this batch."):
                await codes.check_batch_codes(session, first.batch.id, wrong)
    assert [(r.id, r.count, r.redeemed, r.label) for r in rows] == [
        (second.batch.id, 4, 2, second.batch.id),
        (first.batch.id, 2, 1, "first"),
    ]
    assert [c.hint for c in listed] == sorted(c.hint for c in listed)
    assert sum(c.account_id == account.id for c in listed) == 2
    assert await server.ledger(account) == (1500, 1500)
