"""GET /v1/credits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from imagegate.billing import service
from imagegate.envelope import success
from imagegate.keys.auth import Caller, ServicesDep

router = APIRouter()


@router.api_route("/v1/credits", methods=["GET", "HEAD"])
async def get_credits(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    """The calling account's balance in credits."""
    async with services.db.sessions() as session:
        credits = await service.balance(session, caller.account_id)
    return success({"credits": credits})
