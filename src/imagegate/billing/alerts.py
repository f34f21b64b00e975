"""Low-balance alerts: an account's threshold and webhook URL, when a charge crosses the threshold,
and the ``account.low_balance`` event that is then sent, once.

A crossing is a charge that takes the balance from at or above the threshold to below it.
``charge()`` reads the threshold and the notified flag back from its own UPDATE ... RETURNING, so
an account without a threshold costs no extra statement; only a crossing writes the flag and defers
one delivery job, in the charge's transaction (no charge, no event; no event lost on a crash).

``low_balance_notified`` means "told about the low balance it has now". Credits coming back (a
top-up, a refund, an adjustment) need not clear it: a crossing is judged from the balance before the
charge, so every new fall below the threshold is told again whatever the flag says. The flag
decides where there is no crossing: an account below its threshold that was never told (an operator
took credits, say) is told at its next charge, and never twice while it stays below.

Services take a session and never commit; the console and the charge own the transaction.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import store
from imagegate.callbacks.ssrf import Unresolvable, UnsafeDestination, resolve
from imagegate.callbacks.urls import MAX_CALLBACK_URL_CHARS, check_http_url
from imagegate.db.models import Account
from imagegate.db.sql import Tx
from imagegate.jobs.queue import JobQueue

DELIVER_ACCOUNT_EVENT = "deliver_account_event"
LOW_BALANCE = "account.low_balance"
MAX_THRESHOLD = 10**12  # credits; any more is a typo


class AlertSettingsInvalid(ValueError):
    """A refused setting, with the form field it came from and a message for people."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class AlertSettings:
    threshold: int | None  # credits; None: no alert
    webhook_url: str | None  # where account events go; None: the console banner only


@dataclass(frozen=True)
class Saved:
    """What saving the settings did: ``below`` the new threshold already, and whether an event
    was ``sent`` (deferred) for it now."""

    below: bool
    sent: bool


@dataclass(frozen=True)
class LowBalanceEvent:
    """One ``account.low_balance`` event. ``id`` is its webhook-id, the same on every attempt."""

    id: str
    account_id: str
    balance: int
    threshold: int
    created_at: int

    def body(self) -> bytes:
        """The JSON body, the same bytes on every attempt."""
        fields = {
            "type": LOW_BALANCE,
            "account_id": self.account_id,
            "balance": self.balance,
            "threshold": self.threshold,
            "created_at": self.created_at,
        }
        return json.dumps(fields, separators=(",", ":")).encode()

    def args(self, number: int) -> dict[str, Any]:
        """The job arguments of delivery attempt ``number`` (1 for the first)."""
        return {
            "event_id": self.id,
            "account_id": self.account_id,
            "balance": self.balance,
            "threshold": self.threshold,
            "created_at": self.created_at,
            "number": number,
        }

    @classmethod
    def of(cls, args: dict[str, Any]) -> LowBalanceEvent:
        return cls(
            id=str(args["event_id"]),
            account_id=str(args["account_id"]),
            balance=int(args["balance"]),
            threshold=int(args["threshold"]),
            created_at=int(args["created_at"]),
        )


# --- The request path: charge() --------------------------------------------------------------


def crossed(balance: int, price: int, threshold: int, notified: bool) -> bool:
    """Whether a charge of ``price`` that left ``balance`` must tell the account: it went from
    at or above ``threshold`` to below, or it is below and was never told."""
    return balance < threshold and (balance + price >= threshold or not notified)


async def notify(
    tx: Tx,
    queue: JobQueue,
    account_id: str,
    balance: int,
    threshold: int,
    now: float,
) -> None:
    """Mark the account told and, when it has a webhook URL, defer one event for it (the
    caller's row lock, taken by its charge, keeps concurrent charges from doing this twice)."""
    if await store.mark_told(tx, account_id):
        await _defer(tx, queue, account_id, balance, threshold, now)


async def _defer(
    tx: Tx | AsyncSession,
    queue: JobQueue,
    account_id: str,
    balance: int,
    threshold: int,
    now: float,
) -> None:
    # Imported here: callbacks.service imports billing.service, which imports this module.
    from imagegate.callbacks.service import CALLBACKS_QUEUE

    event = LowBalanceEvent(f"msg_{uuid.uuid4().hex}", account_id, balance, threshold, int(now))
    await queue.defer(tx, DELIVER_ACCOUNT_EVENT, event.args(1), queue=CALLBACKS_QUEUE, run_at=now)


# --- Settings (the console) ------------------------------------------------------------------


async def settings_of(session: AsyncSession, account_id: str) -> AlertSettings:
    row = (
        await session.execute(
            select(Account.low_balance_threshold, Account.webhook_url).where(
                Account.id == account_id
            )
        )
    ).one()
    return AlertSettings(threshold=row[0], webhook_url=row[1])


async def webhook_url(session: AsyncSession, account_id: str) -> str | None:
    """Where the account's events go now (read at each attempt: a URL removed stops them)."""
    url: str | None = await session.scalar(
        select(Account.webhook_url).where(Account.id == account_id)
    )
    return url or None


def parse_threshold(text: str) -> int | None:
    """A threshold typed by a person: empty for none, else a whole number of credits."""
    text = text.strip().replace(",", "").replace("_", "")
    if not text:
        return None
    plain = text.isascii() and text.isdigit() and len(text) <= len(str(MAX_THRESHOLD))
    if not plain or not 1 <= int(text) <= MAX_THRESHOLD:
        raise AlertSettingsInvalid(
            "threshold",
            f"The alert threshold must be a whole number of credits from 1 to {MAX_THRESHOLD:,}, "
            "or empty for no alert.",
        )
    return int(text)


URL_PROBLEMS = {
    "too_long": f"must be at most {MAX_CALLBACK_URL_CHARS:,} characters",
    "credentials": "must not contain a user name or password",
}


async def check_webhook_url(text: str, allow_private: bool) -> str | None:
    """The account's webhook URL, held to the rules of a task's callback_url: an absolute
    http(s) URL, short, with no credentials, not reaching this network (the SSRF guard; a host
    with no address yet is accepted and checked again at each delivery). Empty: None."""
    url = text.strip()
    if not url:
        return None
    try:
        check_http_url(url)
        await resolve(url, allow_private)
    except Unresolvable:
        return url
    except UnsafeDestination as exc:
        raise AlertSettingsInvalid(
            "webhook_url", f"The webhook URL is not allowed: {exc}."
        ) from None
    except ValueError as exc:
        problem = URL_PROBLEMS.get(str(exc), "must be an absolute http or https URL")
        raise AlertSettingsInvalid("webhook_url", f"The webhook URL {problem}.") from None
    return url


async def save_settings(
    session: AsyncSession,
    queue: JobQueue,
    account_id: str,
    settings: AlertSettings,
    now: float,
) -> Saved:
    """Store the account's alert settings (already checked). A new threshold is judged at once:
    at or above it, the account is ready to be told at the next crossing; below it, the account
    is told now (an event to its webhook URL, if any), unless it was already told about this
    low balance under the old threshold. The same threshold saved again changes nothing."""
    account = await session.get(Account, account_id, with_for_update=True, populate_existing=True)
    assert account is not None
    before = account.low_balance_threshold
    account.webhook_url = settings.webhook_url
    account.low_balance_threshold = settings.threshold
    below = settings.threshold is not None and account.credits < settings.threshold
    if settings.threshold == before:
        return Saved(below=below, sent=False)
    told = account.low_balance_notified and before is not None and account.credits < before
    account.low_balance_notified = below
    sent = below and not told and settings.webhook_url is not None
    if sent:
        assert settings.threshold is not None
        await _defer(session, queue, account_id, account.credits, settings.threshold, now)
    await session.flush()
    return Saved(below=below, sent=sent)
