"""Billing section (being built): its routes and its part of the Billing page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.users.service import SignedIn

router = APIRouter(prefix="/console")


async def section(request: Request, who: SignedIn, session: AsyncSession) -> dict[str, Any]:
    """This section's values for billing.html and its include, read in the page's session."""
    return {}
