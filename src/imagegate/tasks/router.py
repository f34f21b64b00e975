"""POST /v1/images/generations and GET /v1/tasks/{taskId}: HTTP only, rules live in service.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from imagegate.envelope import success
from imagegate.http_routes import get_and_head
from imagegate.keys.auth import admit
from imagegate.keys.service import key_hash
from imagegate.services import Services
from imagegate.tasks import service, store
from imagegate.tasks.admission import admit_create
from imagegate.tasks.presenter import task_json
from imagegate.tasks.schemas import (
    CreateTaskRequest,
    CreateTaskResponse,
    TaskObject,
)

JSON = "application/json"
_CREATED = CreateTaskResponse.__pydantic_serializer__
_VALIDATE_CREATED = CreateTaskResponse.__pydantic_validator__


def created_json(task_id: str) -> bytes:
    """The success envelope (envelope.py) with the new task's id, checked against its schema."""
    created = _VALIDATE_CREATED.validate_python(success({"taskId": task_id}))
    return _CREATED.to_json(created)


router = APIRouter()

_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CreateTaskRequest"}}
        },
    }
}

_TASK_ID: dict[str, Any] = {
    "parameters": [{"name": "taskId", "in": "path", "required": True, "schema": {"type": "string"}}]
}


@router.post(
    "/v1/images/generations",
    response_model=CreateTaskResponse,
    openapi_extra=_CREATE_BODY,
)
async def create_generation(request: Request) -> Any:
    """Create an image generation task; poll it at /v1/tasks/{taskId}."""
    services: Services = request.app.state.services
    admitted = await admit_create(request, services)
    now = services.clock.now()
    task_id = await services.db.write(
        lambda tx: service.create_task(
            tx, services.queue, admitted.caller, admitted.body, now, admitted.model
        )
    )
    return Response(created_json(task_id), media_type=JSON)


@get_and_head(
    router,
    "/v1/tasks/{taskId}",
    response_model=TaskObject,
    response_model_exclude_none=True,
    openapi_extra=_TASK_ID,
)
async def get_task(request: Request) -> Any:
    """A task of the calling account: pending, processing, completed (with URLs) or failed."""
    # The id is read from the path here: a declared parameter cost FastAPI more to solve than
    # the rest of this function (it is documented through openapi_extra).
    taskId: str = request.path_params["taskId"]  # noqa: N806
    services: Services = request.app.state.services
    hashed = key_hash(services.hasher, request.headers.get("authorization"))
    wanted = service.task_id_or_none(taskId) or ""
    row = await services.db.read(lambda tx: store.caller_and_task(tx, hashed, wanted))
    await admit(request, services, row)  # the key, its IP allowlist and rate limit first
    assert row is not None  # admit() refuses an unknown key
    task = service.visible(store.view_of(row), taskId)
    return Response(task_json(task, services.public_url), media_type=JSON)


def openapi_components() -> dict[str, Any]:
    """Schemas the hand-parsed request body refers to, for /openapi.json."""
    schema = CreateTaskRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {"CreateTaskRequest": schema, **defs}
