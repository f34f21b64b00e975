"""GET /v1/credits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from imagegate.billing import service
from imagegate.billing.schemas import CreditsResponse
from imagegate.envelope import success
from imagegate.http_docs import responses
from imagegate.http_routes import get_and_head
from imagegate.keys.auth import Caller, ServicesDep

router = APIRouter()


@get_and_head(router, "/v1/credits", response_model=CreditsResponse, responses=responses())
async def get_credits(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    """The calling account's balance in credits."""
    async with services.db.sessions() as session:
        credits = await service.balance(session, caller.account_id)
    return success({"credits": credits})
