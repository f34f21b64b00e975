"""POST /v1/images/generations and GET /v1/tasks/{taskId}: HTTP only, rules live in service.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from imagegate.callbacks.ssrf import Unresolvable, UnsafeDestination, resolve
from imagegate.envelope import success
from imagegate.errors import InvalidRequest, UpstreamUnavailable
from imagegate.http_routes import get_and_head
from imagegate.keys.auth import Caller, ServicesDep
from imagegate.tasks import service
from imagegate.tasks.presenter import render_json, task_object
from imagegate.tasks.schemas import (
    CreateTaskRequest,
    CreateTaskResponse,
    TaskObject,
    parse_create_request,
)

router = APIRouter()

_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CreateTaskRequest"}}
        },
    }
}


@router.post(
    "/v1/images/generations",
    response_model=CreateTaskResponse,
    openapi_extra=_CREATE_BODY,
)
async def create_generation(request: Request, caller: Caller, services: ServicesDep) -> Any:
    """Create an image generation task; poll it at /v1/tasks/{taskId}."""
    raw = await read_body(request, services.settings.max_body_bytes)
    body = parse_create_request(raw)
    if body.callback_url is not None:
        await check_callback_url(body.callback_url, services.settings.callback_allow_private)
    # The order of checks: ... body (400) -> model (404) -> a provider for it (503) -> spend
    # limits and balance (429, 402, in the charging transaction).
    model = service.admitted_model(caller, body)
    if not await services.providers.available(model.name):
        raise UpstreamUnavailable(
            f"No provider can take '{model.name}' tasks right now (nothing was charged); "
            "try again later."
        )
    async with services.db.transaction() as session:
        task = await service.create_task(
            session, services.queue, caller, body, services.clock.now(), model
        )
    return JSONResponse(success({"taskId": task.id}))


@get_and_head(
    router,
    "/v1/tasks/{taskId}",
    response_model=TaskObject,
    response_model_exclude_none=True,
)
async def get_task(taskId: str, caller: Caller, services: ServicesDep) -> Any:  # noqa: N803
    """A task of the calling account: pending, processing, completed (with URLs) or failed."""
    async with services.db.sessions() as session:
        task = await service.get_task(session, caller.account_id, taskId)
    return Response(
        render_json(task_object(task, services.public_url)), media_type="application/json"
    )


async def check_callback_url(url: str, allow_private: bool) -> None:
    """Refuse a callback_url that reaches this network (see callbacks/ssrf.py); a host with no
    address yet is accepted and checked again at each delivery."""
    try:
        await resolve(url, allow_private)
    except Unresolvable:
        return
    except UnsafeDestination as exc:
        raise InvalidRequest(f"'callback_url' is not allowed: {exc}.") from None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise InvalidRequest(f"Request body is larger than {limit:,} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidRequest(f"Request body is larger than {limit:,} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def openapi_components() -> dict[str, Any]:
    """Schemas the hand-parsed request body refers to, for /openapi.json."""
    schema = CreateTaskRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {"CreateTaskRequest": schema, **defs}
