"""FastAPI dependencies: the services of this process and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from imagegate.keys.service import Principal, authenticate
from imagegate.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(
    services: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    async with services.db.sessions() as session:
        return await authenticate(session, services.hasher, authorization)


Caller = Annotated[Principal, Depends(get_principal)]
