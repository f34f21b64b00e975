"""Tasks in the wire format of the reference (also the body of callbacks), from one schema:
tasks/schemas.py's TaskObject, which /openapi.json documents too."""

from __future__ import annotations

from typing import Any, Protocol

from imagegate.catalog import IDEOGRAM_V4
from imagegate.tasks.schemas import TaskObject
from imagegate.tasks.status import TaskStatus

_SERIALIZER = TaskObject.__pydantic_serializer__
_VALIDATOR = TaskObject.__pydantic_validator__


class ShownTask(Protocol):
    """What is shown of a task: a row of the tasks table, or tasks/store.py's TaskView."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def created_at(self) -> float: ...
    @property
    def completed_at(self) -> float | None: ...
    @property
    def output_urls(self) -> list[str] | None: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def reported_model(self) -> str | None: ...


def task_object(task: ShownTask, public_url: str) -> TaskObject:
    """The task exactly as GET /v1/tasks/{taskId} shows it, checked against the schema."""
    body: dict[str, Any] = {
        "id": task.id,
        "status": task.status,
        "model": task.model,
        "created_at": int(task.created_at),
    }
    if task.status == TaskStatus.COMPLETED:
        body["completed_at"] = int(task.completed_at or task.created_at)
        body["output"] = {
            "urls": [f"{public_url}/images/{key}" for key in task.output_urls or []],
            "metadata": {"model": reported_model(task)},
        }
    elif task.status == TaskStatus.FAILED:
        body["error"] = {
            "code": task.error_code or "upstream_error",
            "message": task.error_message or "Image generation failed",
        }
    # Validating a dict runs in pydantic's core: cheaper than model_construct() of each part.
    return _VALIDATOR.validate_python(body)  # type: ignore[no-any-return]


def task_json(task: ShownTask, public_url: str) -> bytes:
    """The exact bytes served for ``task`` (compact UTF-8), so a callback carries byte for byte
    what GET /v1/tasks/{taskId} returns; keys in the reference's order."""
    return _SERIALIZER.to_json(task_object(task, public_url), exclude_none=True)


def reported_model(task: ShownTask) -> str:
    """The output.metadata.model of ``task``: its model's when it was created. Tasks from before
    the catalogue was data (migration 0011) have none: they were all the seed's."""
    if task.reported_model is not None:
        return task.reported_model
    return IDEOGRAM_V4.reports if task.model == IDEOGRAM_V4.name else task.model
