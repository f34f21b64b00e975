"""The overview page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from imagegate.billing import service as billing
from imagegate.console.auth import Who
from imagegate.console.web import render, services_of

router = APIRouter(prefix="/console")


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, who: Who) -> Response:
    services = services_of(request)
    async with services.db.sessions() as session:
        balance = await billing.balance(session, who.account_id)
    return render(request, "overview.html", who, title="Overview", balance=balance)
