"""The Billing page's "Low-balance alert" section: the threshold and the account's webhook URL
for account events, and the form that saves them. The rules are in billing/alerts.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.billing import alerts
from imagegate.console import billing as billing_page  # billing.py includes this section
from imagegate.console.auth import Who, checked_form, text
from imagegate.console.web import redirect, services_of
from imagegate.users.service import SignedIn

router = APIRouter(prefix="/console")


async def section(request: Request, who: SignedIn, session: AsyncSession) -> dict[str, Any]:
    """This section's values for billing.html and its include, read in the page's session."""
    saved = await alerts.settings_of(session, who.account_id)
    return {
        "alert_saved": {
            "threshold": "" if saved.threshold is None else str(saved.threshold),
            "webhook_url": saved.webhook_url or "",
        },
        "alert_active": saved.threshold is not None,
    }


@router.post("/billing/alerts")
async def save_alert(request: Request, who: Who) -> Response:
    form = await checked_form(request, who)
    posted = {"threshold": text(form, "threshold"), "webhook_url": text(form, "webhook_url")}
    services = services_of(request)
    try:
        settings = alerts.AlertSettings(
            threshold=alerts.parse_threshold(posted["threshold"]),
            webhook_url=await alerts.check_webhook_url(
                posted["webhook_url"], services.settings.callback_allow_private
            ),
        )
    except alerts.AlertSettingsInvalid as refused:
        return await billing_page.billing_view(
            request, who, status_code=400, alert_error=str(refused),
            alert_form=posted, alert_invalid=refused.field,
        )  # fmt: skip
    async with services.db.transaction() as session:
        saved = await alerts.save_settings(
            session, services.queue, who.account_id, settings, services.clock.now()
        )
    return redirect(request, "/console/billing", _notice(settings, saved))


def _notice(settings: alerts.AlertSettings, saved: alerts.Saved) -> str:
    if settings.threshold is None:
        return "Low-balance alert turned off."
    notice = f"Low-balance alert saved: below {settings.threshold:,} credits you will be told."
    if saved.sent:
        notice += (
            " Your balance is already below it: an account.low_balance event is on its way to "
            "your webhook URL."
        )
    elif saved.below:
        notice += " Your balance is already below it."
    return notice
