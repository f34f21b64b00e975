"""POST /openai/v1/images/generations and GET /openai/v1/models: HTTP only.

A generation of ``n`` images is ``n`` tasks of the task API, admitted in the same order
(tasks/admission.py: key, IP allowlist, rate limit, body, model) and created and charged in one
transaction (all or none). The answer waits for them (IMAGEGATE_OPENAI_MAX_WAIT):

- every task completed: 200 and their images, as ``url`` or ``b64_json``;
- some failed, others completed: 200 with the completed ones (each failed one is refunded);
- all failed: OpenAI's error for a failed generation: 400 ``content_policy_violation`` for a
  refused prompt, else 500 ``server_error`` with ``x-should-retry: false`` (each refunded);
- the wait ran out: 202 with the images made so far and ``pending``: each unfinished task with
  the URL of its GET /v1/tasks/{id}. Nothing is lost or charged again: the tasks run on.

Once tasks are charged and not refunded, no answer is a 5xx (OpenAI's SDKs retry those, which
would pay again): an image that cannot be read back, or any error while waiting, is a 202 like
the last.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from imagegate.catalog import SIZES
from imagegate.errors import InvalidRequest
from imagegate.logs import about_task
from imagegate.openai_api.errors import NO_RETRY, error_body
from imagegate.openai_api.mapping import preset, speed
from imagegate.openai_api.schemas import (
    Image,
    ImageRequest,
    ImagesResponse,
    Model,
    ModelList,
    PendingTask,
    parse_request,
)
from imagegate.providers.base import SAFETY_REJECTED
from imagegate.services import Services
from imagegate.storage.base import StorageUnavailable
from imagegate.tasks import store
from imagegate.tasks.admission import Admitted, Creator, admit_creator, create_tasks, read_body
from imagegate.tasks.live import until_final
from imagegate.tasks.schemas import parse_create_request
from imagegate.tasks.service import admitted_model
from imagegate.tasks.status import FINAL, TaskStatus
from imagegate.tasks.store import TaskView

PREFIX = "/openai"
log = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX + "/v1", include_in_schema=False)


@router.post("/images/generations")
async def generate_images(request: Request) -> Response:
    services: Services = request.app.state.services
    creator = await admit_creator(request, services)
    body = parse_request(await read_body(request, services.settings.max_body_bytes))
    admitted = _admitted(creator, body)
    task_ids = await create_tasks(services, admitted, body.n or 1)
    about_task(task_ids[0])
    account_id, wait = creator.caller.account_id, services.settings.openai_max_wait
    try:
        tasks = await asyncio.gather(*(_final(services, account_id, i, wait) for i in task_ids))
        return await _answer(services, body, list(tasks))
    except Exception:
        # The tasks are made and charged: a 5xx now would have the SDK retry and pay again.
        log.exception("answering OpenAI images %s failed; answered with their tasks", task_ids)
        return _accepted(services, [PendingTask(id=i, status="unknown", url="") for i in task_ids])


@router.get("/models")
async def list_models(request: Request) -> Response:
    creator = await admit_creator(request, request.app.state.services)
    models = [
        Model(id=model.name, created=0, owned_by=model.reports.partition("/")[0] or "imagegate")
        for model in creator.offered()
    ]
    return JSONResponse(ModelList(data=models).model_dump())


def _admitted(creator: Creator, body: ImageRequest) -> Admitted:
    """The request as the task API's create (the same checks and messages, in OpenAI's names)."""
    known = creator.models.get(body.model)
    task_input = {
        "prompt": body.prompt,
        "size": preset(body.size, known.sizes if known else tuple(SIZES)),
        "rendering_speed": speed(body.quality),
        "output_format": body.output_format or "png",  # OpenAI's default
    }
    raw = json.dumps({"model": body.model, "input": task_input}).encode()
    try:
        task_request = parse_create_request(raw)
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message.replace("'input.prompt'", "'prompt'")) from None
    model = admitted_model(creator.caller, task_request, creator.models)
    return Admitted(creator.caller, task_request, model, None, creator.plan_ratio)


async def _final(services: Services, account_id: str, task_id: str, seconds: float) -> TaskView:
    task = await services.db.read(lambda tx: store.task_of(tx, account_id, task_id))
    assert task is not None
    return await until_final(services, account_id, task, seconds)


async def _answer(services: Services, body: ImageRequest, tasks: list[TaskView]) -> Response:
    completed = [task for task in tasks if task.status == TaskStatus.COMPLETED]
    pending = [task for task in tasks if task.status not in FINAL]
    if not completed and not pending:
        return _failed(tasks[0])
    images: list[Image] = []
    for task in completed:
        made = [await _image(services, body, key) for key in task.output_urls or []]
        if None in made:  # stored, but not readable now: the task API serves it later
            pending.append(task)
        images.extend(image for image in made if image is not None)
    if pending:
        return _accepted(services, [PendingTask(id=t.id, status=t.status, url="") for t in pending],
                         images)  # fmt: skip
    answer = ImagesResponse(created=int(services.clock.now()), data=images)
    return JSONResponse(answer.model_dump(exclude_none=True))


def _accepted(
    services: Services, pending: list[PendingTask], images: list[Image] | None = None
) -> Response:
    """202: the images made so far, and the tasks of the others, to be fetched from the task API
    with the same key (they run on; nothing is charged again)."""
    for task in pending:
        task.url = f"{services.public_url}/v1/tasks/{task.id}"
    answer = ImagesResponse(created=int(services.clock.now()), data=images or [], pending=pending)
    content: dict[str, Any] = answer.model_dump(exclude_none=True)
    return JSONResponse(content, status_code=202)


async def _image(services: Services, body: ImageRequest, key: str) -> Image | None:
    """The image as asked for; None when it cannot be read back now."""
    if body.response_format != "b64_json":
        return Image(url=f"{services.public_url}/images/{key}", revised_prompt=body.prompt)
    try:
        data = await services.store.read(key)
    except StorageUnavailable:
        data = None
    if data is None:
        return None
    return Image(b64_json=base64.b64encode(data).decode(), revised_prompt=body.prompt)


def _failed(task: TaskView) -> Response:
    """What OpenAI answers for a generation that failed (the task was refunded)."""
    message = task.error_message or "Image generation failed"
    if message == SAFETY_REJECTED:
        return error_body(
            400,
            "Your request was rejected as a result of our safety system: " + message + ".",
            "invalid_request_error",
            "content_policy_violation",
            "prompt",
        )
    return error_body(500, message, "server_error", task.error_code, headers=NO_RETRY)
