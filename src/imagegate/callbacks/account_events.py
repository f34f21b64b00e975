"""The job that delivers an account event (``account.low_balance``) to the account's webhook URL.

Signed like task callbacks (Standard Webhooks, the account's secret; the webhook-id is the
event's, the same on every attempt) and sent by the same SSRF-guarded code. A failed attempt plans
the next one as a job of its own at the callback schedule's time (IMAGEGATE_CALLBACK_RETRY_DELAYS,
counted from the attempt before); after the last, the failure is logged, and that is all: account
events keep no delivery log. A job run twice (a crash mid-attempt) posts twice with one webhook-id,
which receivers dedupe on.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from imagegate import __version__
from imagegate.billing import alerts
from imagegate.billing.alerts import DELIVER_ACCOUNT_EVENT, LOW_BALANCE, LowBalanceEvent
from imagegate.callbacks import service as callbacks
from imagegate.callbacks.delivery import DeliveryResult, post_callback
from imagegate.callbacks.signing import signature_headers
from imagegate.clock import Clock
from imagegate.config import Settings
from imagegate.db.database import Database
from imagegate.jobs.kinds import JobKind
from imagegate.jobs.queue import JobQueue

log = logging.getLogger(__name__)


class AccountEventDeliverer:
    def __init__(
        self,
        db: Database,
        queue: JobQueue,
        http: httpx.AsyncClient,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.db, self.queue, self.http, self.clock, self.settings = db, queue, http, clock, settings

    def job_kind(self) -> JobKind:
        return JobKind(handler=self.run, give_up=self.give_up)

    async def give_up(self, args: dict[str, Any], error: str) -> None:
        """Our side kept failing (not the receiver): the event is dropped, and said so."""
        log.error(
            "account event %s for account %s dropped: its delivery job kept failing",
            args.get("event_id"),
            args.get("account_id"),
        )

    async def run(self, args: dict[str, Any]) -> None:
        """Attempt number ``args["number"]`` of the event in ``args``."""
        event, number = LowBalanceEvent.of(args), int(args["number"])
        if await self._postponed(event, number):
            return
        async with self.db.transaction() as session:  # the secret is made on first use
            url = await alerts.webhook_url(session, event.account_id)
            if url is None:
                log.info("account event %s not sent: no webhook URL any more", event.id)
                return
            secret = await callbacks.webhook_secret(session, event.account_id)
        now = self.clock.now()
        body = event.body()
        result = await post_callback(
            self.http, url, body, _headers(event, secret, int(now), body),
            time_limit=self.settings.callback_timeout,
        )  # fmt: skip
        if not result.delivered:
            await self._retry_or_log(event, number, now, result)

    async def _postponed(self, event: LowBalanceEvent, number: int) -> bool:
        """The first attempt waits the schedule's first delay (0 by default) after the event;
        the charge that deferred it had no settings to hand."""
        due = event.created_at + self.settings.callback_retry_delays[0]
        if number != 1 or self.clock.now() >= due:
            return False
        await self._defer(event, 1, due)
        return True

    async def _retry_or_log(
        self, event: LowBalanceEvent, number: int, attempted_at: float, result: DeliveryResult
    ) -> None:
        delays = self.settings.callback_retry_delays
        if number < len(delays):
            await self._defer(event, number + 1, attempted_at + delays[number])
            return
        log.warning(
            "account event %s (%s) for account %s failed after %d attempts: %s",
            event.id, LOW_BALANCE, event.account_id, number, result.error,
        )  # fmt: skip

    async def _defer(self, event: LowBalanceEvent, number: int, run_at: float) -> None:
        async with self.db.transaction() as session:
            await self.queue.defer(
                session, DELIVER_ACCOUNT_EVENT, event.args(number),
                queue=callbacks.CALLBACKS_QUEUE, run_at=run_at,
            )  # fmt: skip


def _headers(event: LowBalanceEvent, secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": f"imagegate-callbacks/{__version__}",
        "X-Event": LOW_BALANCE,
        "X-Timestamp": str(timestamp),
        **signature_headers(secret, event.id, timestamp, body),
    }
