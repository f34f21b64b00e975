"""GET /v1/webhooks/secret and GET /v1/tasks/{taskId}/callbacks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from imagegate.callbacks import service
from imagegate.callbacks.schemas import TaskCallbacksResponse, WebhookSecretResponse
from imagegate.db.models import Callback
from imagegate.envelope import success
from imagegate.errors import TaskNotFound
from imagegate.http_docs import responses
from imagegate.http_routes import get_and_head
from imagegate.keys.auth import Caller, ServicesDep
from imagegate.tasks.service import get_task

router = APIRouter()


@get_and_head(
    router, "/v1/webhooks/secret", response_model=WebhookSecretResponse, responses=responses()
)
async def get_webhook_secret(caller: Caller, services: ServicesDep) -> dict[str, Any]:
    """The secret that signs this account's callbacks (Standard Webhooks, ``whsec_...``)."""
    async with services.db.transaction() as session:
        secret = await service.webhook_secret(session, caller.account_id)
    return success({"secret": secret})


@get_and_head(
    router,
    "/v1/tasks/{taskId}/callbacks",
    response_model=TaskCallbacksResponse,
    responses=responses(TaskNotFound),
)
async def get_task_callbacks(
    taskId: str,  # noqa: N803 - the reference's name
    caller: Caller,
    services: ServicesDep,
) -> dict[str, Any]:
    """The delivery log of a task's callback: each attempt and the callback's state."""
    async with services.db.sessions() as session:
        task = await get_task(session, caller.account_id, taskId)
        callback = await session.get(Callback, task.id)
        attempts = await service.attempts(session, task.id) if callback else []
    data = {
        "task_id": task.id,
        "url": task.callback_url,
        "event": callback.event if callback else None,
        # null until the task ends; then pending (more attempts to come), delivered or failed
        "status": callback.status if callback else None,
        "next_attempt_at": _seconds(callback.next_attempt_at) if callback else None,
        "attempts": [
            {
                "number": a.number,
                "attempted_at": int(a.attempted_at),
                "status_code": a.status_code,
                "error": a.error,
                "next_attempt_at": _seconds(a.next_attempt_at),
            }
            for a in attempts
        ],
    }
    return success(data)


def _seconds(value: float | None) -> int | None:
    return None if value is None else int(value)
