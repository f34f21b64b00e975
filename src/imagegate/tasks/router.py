"""The task API: create (idempotent, optionally waited for), get (optionally long-polled), live
status, cancel, list, usage. HTTP only: the rules live in the modules this calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from imagegate.envelope import success
from imagegate.errors import (
    InsufficientCredits,
    InvalidRequest,
    ModelNotFound,
    SpendLimitExceeded,
    TaskNotFound,
    UpstreamUnavailable,
)
from imagegate.http_docs import parameter, responses
from imagegate.http_routes import get_and_head
from imagegate.keys.auth import Caller, ServicesDep, admit
from imagegate.keys.service import key_hash
from imagegate.logs import about_task
from imagegate.metrics import record
from imagegate.services import Services
from imagegate.tasks import idempotency, listing, patterns, service, store, usage
from imagegate.tasks.admission import admit_create, create
from imagegate.tasks.live import MAX_WAIT, preferred_wait, status_events, until_final, wait_seconds
from imagegate.tasks.presenter import task_json, task_object
from imagegate.tasks.schemas import (
    CreateTaskRequest,
    CreateTaskResponse,
    CreateTaskWaitedResponse,
    TaskListResponse,
    TaskObject,
    UsageResponse,
)
from imagegate.tasks.store import TaskView

JSON = "application/json"
_CREATED = CreateTaskResponse.__pydantic_serializer__
_VALIDATE_CREATED = CreateTaskResponse.__pydantic_validator__
_WAITED = CreateTaskWaitedResponse.__pydantic_serializer__
_VALIDATE_WAITED = CreateTaskWaitedResponse.__pydantic_validator__
_LISTED = TaskListResponse.__pydantic_serializer__
_VALIDATE_LISTED = TaskListResponse.__pydantic_validator__
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DAY = "A UTC day, YYYY-MM-DD (inclusive)"
# The last second of 9999-12-31 (UTC): later times are no times a task can have (nor a database
# integer hold).
MAX_UNIX_TIME = 253_402_300_799
StatusQuery = Annotated[Literal["pending", "processing", "completed", "failed"] | None, Query()]
UnixTimeQuery = Annotated[
    int | None, Query(ge=0, le=MAX_UNIX_TIME, description="Unix seconds, exclusive")
]
# Only a next_cursor of an earlier page is a cursor; anything else is 400 invalid_request.
CursorQuery = Annotated[
    str | None,
    Query(max_length=512, json_schema_extra={"pattern": "^[A-Za-z0-9_-]*$"},
          description="The `next_cursor` of the previous page"),
]  # fmt: skip
DayQuery = Annotated[str | None, Query(pattern=_DATE, json_schema_extra={"format": "date"})]


def _created_around() -> tuple[bytes, bytes]:
    """created_json's body before and after the task's id: the schema's own JSON of an answer
    with a placeholder id, split there."""
    placeholder = "00000000-0000-7000-8000-000000000000"
    body = _CREATED.to_json(_VALIDATE_CREATED.validate_python(success({"taskId": placeholder})))
    head, tail = body.split(placeholder.encode())
    return head, tail


_CREATED_HEAD, _CREATED_TAIL = _created_around()


def created_json(task_id: str) -> bytes:
    """The success envelope (envelope.py) with the new task's id, as its schema writes it. A
    task id is a UUID (tasks/service.py's new_task_id): nothing in it needs escaping."""
    return _CREATED_HEAD + task_id.encode() + _CREATED_TAIL


router = APIRouter()

_CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CreateTaskRequest"}}
        },
    },
    "parameters": [
        parameter(idempotency.HEADER, "header",
                  {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_CHARS,
                   "pattern": patterns.IDEMPOTENCY_KEY},
                  "Send the create again with the same key and body to get the same task, "
                  "charged once (kept 24 hours)."),
        parameter("Prefer", "header",
                  {"type": "string", "not": {"pattern": patterns.PREFER_WAIT_INVALID}},
                  "`wait=N` (1-60): answer once the task is final or after N seconds, with the "
                  "task in `data.task`. Other preferences are ignored (RFC 7240)."),
    ],
}  # fmt: skip

# One event of the stream (as Open API before 3.2 reads an event stream's schema).
_STATUS_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"const": "status"},
        "data": {"type": "string", "contentMediaType": JSON,
                 "contentSchema": {"$ref": "#/components/schemas/TaskObject"}},
    },
}  # fmt: skip

_TASK_ID = parameter("taskId", "path", {"type": "string"})
_WAIT = parameter("wait", "query", {"type": "integer", "minimum": 1, "maximum": MAX_WAIT},
                  "Answer once the task is final, or after this many seconds.")  # fmt: skip


@router.post(
    "/v1/images/generations",
    response_model=CreateTaskResponse | CreateTaskWaitedResponse,
    openapi_extra=_CREATE_BODY,
    responses=responses(
        InvalidRequest, InsufficientCredits, ModelNotFound, SpendLimitExceeded,
        UpstreamUnavailable,
    ),
)  # fmt: skip
async def create_generation(request: Request) -> Any:
    """Create an image generation task; poll it at /v1/tasks/{taskId}."""
    services: Services = request.app.state.services
    admitted = await admit_create(request, services)
    wait = preferred_wait(request.headers)
    created = await create(services, admitted)
    about_task(created.task_id)
    headers = {idempotency.REPLAYED: "true"} if created.replayed else {}
    if wait is None:
        return Response(created_json(created.task_id), media_type=JSON, headers=headers)
    account_id = admitted.caller.account_id
    task = await services.db.read(lambda tx: store.task_of(tx, account_id, created.task_id))
    assert task is not None
    task = await until_final(services, account_id, task, wait)
    body = success({"taskId": task.id, "task": task_object(task, services.public_url)})
    headers["Preference-Applied"] = f"wait={wait}"
    return Response(_WAITED.to_json(_VALIDATE_WAITED.validate_python(body)), media_type=JSON,
                    headers=headers)  # fmt: skip


@get_and_head(
    router,
    "/v1/tasks/{taskId}",
    response_model=TaskObject,
    response_model_exclude_none=True,
    openapi_extra={"parameters": [_TASK_ID, _WAIT]},
    responses=responses(InvalidRequest, TaskNotFound),
)
async def get_task(request: Request) -> Any:
    """A task of the calling account: pending, processing, completed (with URLs) or failed.
    With ``?wait=N``, answered once it is final or after N seconds."""
    # The id is read from the path here: a declared parameter cost FastAPI more to solve than
    # the rest of this function (it is documented through openapi_extra).
    taskId: str = request.path_params["taskId"]  # noqa: N806
    services: Services = request.app.state.services
    hashed = key_hash(services.hasher, request.headers.get("authorization"))
    wanted = service.task_id_or_none(taskId) or ""
    row = await services.reads.caller_and_task(hashed, wanted)
    caller = await admit(request, services, row)  # the key, its IP allowlist and rate limit first
    assert row is not None  # admit() refuses an unknown key
    task = service.visible(store.view_of(row), taskId)
    about_task(task.id)
    if request.scope["query_string"]:  # (request.url would parse the whole URL first)
        wait = wait_seconds(request.query_params.get("wait"), "'wait'")
        if wait is not None:
            task = await until_final(services, caller.account_id, task, wait)
    return Response(task_json(task, services.public_url), media_type=JSON)


@router.get(
    "/v1/tasks/{taskId}/events",
    response_class=StreamingResponse,
    responses={
        200: {"description": "Server-sent events: `status` with the task object at once and on "
              "every change; a comment every 15 s; the stream ends after the final status.",
              "content": {"text/event-stream": {"schema": _STATUS_EVENT}}},
        **responses(TaskNotFound),
    },
)  # fmt: skip
async def task_events(taskId: str, caller: Caller, services: ServicesDep) -> StreamingResponse:  # noqa: N803
    """The task's status as it changes, as server-sent events."""
    about_task((await _owned(services, caller.account_id, taskId)).id)
    return StreamingResponse(
        status_events(services, caller.account_id, taskId),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/v1/tasks/{taskId}/cancel",
    response_model=TaskObject,
    response_model_exclude_none=True,
    responses=responses(InvalidRequest, TaskNotFound),
)
async def cancel_task(taskId: str, caller: Caller, services: ServicesDep) -> Response:  # noqa: N803
    """Cancel a pending or processing task: it fails with code `cancelled` and is refunded."""
    settings = services.settings
    about_task(service.task_id_or_none(taskId) or "")
    async with services.db.transaction() as session:
        task = await service.cancel(
            session, services.queue, caller.account_id, taskId, services.clock.now(),
            settings.callback_retry_delays,
        )  # fmt: skip
    record.task_ended(task)
    return Response(task_json(task, services.public_url), media_type=JSON)


async def _owned(services: Services, account_id: str, task_id: str) -> TaskView:
    wanted = service.task_id_or_none(task_id) or ""
    found = await services.db.read(lambda tx: store.task_of(tx, account_id, wanted))
    return service.visible(found, task_id)


@get_and_head(
    router,
    "/v1/tasks",
    response_model=TaskListResponse,
    responses=responses(InvalidRequest),
)
async def list_tasks(
    caller: Caller,
    services: ServicesDep,
    status: StatusQuery = None,
    created_after: UnixTimeQuery = None,
    created_before: UnixTimeQuery = None,
    limit: Annotated[int, Query(ge=1, le=listing.MAX_PAGE)] = 20,
    cursor: CursorQuery = None,
) -> Response:
    """The account's tasks, newest first; follow `next_cursor` for older ones."""
    # Tasks show whole seconds: "created after X" is from X + 1 on, "before X" is under X.
    where = listing.TaskFilter(
        status=status,
        created_from=None if created_after is None else created_after + 1,
        created_before=created_before,
    )
    try:
        async with services.db.sessions() as session:
            page = await listing.list_tasks(
                session, caller.account_id, where, cursor=cursor, limit=limit
            )
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    tasks = [task_object(task, services.public_url) for task in page.tasks]
    body = success({"tasks": tasks, "next_cursor": page.next_cursor})
    return Response(_LISTED.to_json(_VALIDATE_LISTED.validate_python(body)), media_type=JSON)


@get_and_head(
    router,
    "/v1/usage",
    response_model=UsageResponse,
    responses=responses(InvalidRequest),
)
async def get_usage(
    caller: Caller,
    services: ServicesDep,
    from_: Annotated[DayQuery, Query(alias="from", description="YYYY-MM-DD (UTC)")] = None,
    to: Annotated[DayQuery, Query(description="YYYY-MM-DD (UTC), inclusive")] = None,
    group_by: Annotated[Literal["day", "key", "speed"], Query()] = "day",
) -> dict[str, Any]:
    """Tasks created, completed and failed and credits charged, refunded and net, by UTC day,
    key or rendering speed (tasks and their credits count on the day they were created)."""
    today = datetime.fromtimestamp(services.clock.now(), UTC).date()
    first, last = usage.period(from_, to, today)
    found = await services.db.read(
        lambda tx: usage.usage(tx, caller.account_id, first, last, group_by)
    )
    return success(found.model_dump(by_alias=True))


def openapi_components() -> dict[str, Any]:
    """Schemas the hand-parsed request body refers to, for /openapi.json."""
    schema = CreateTaskRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {"CreateTaskRequest": schema, **defs}
