"""The wire shapes of GET /v1/webhooks/secret and GET /v1/tasks/{taskId}/callbacks, for
/openapi.json."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class WebhookSecret(BaseModel):
    secret: str


class WebhookSecretResponse(BaseModel):
    code: int = 200
    msg: str = "success"
    data: WebhookSecret


class CallbackAttemptLog(BaseModel):
    """One delivery attempt: the receiver's status code, or the error that stood for one."""

    number: int
    attempted_at: int
    status_code: int | None
    error: str | None
    next_attempt_at: int | None


class TaskCallbacks(BaseModel):
    """A task's callback: null event and status until the task ends (or without a callback_url);
    then pending (more attempts to come), delivered or failed."""

    task_id: str
    url: str | None
    event: Literal["task.completed", "task.failed"] | None
    status: Literal["pending", "delivered", "failed"] | None
    next_attempt_at: int | None
    attempts: list[CallbackAttemptLog]


class TaskCallbacksResponse(BaseModel):
    code: int = 200
    msg: str = "success"
    data: TaskCallbacks
