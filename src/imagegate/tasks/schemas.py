"""The request body of POST /v1/images/generations and the task object, as in the reference."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from imagegate.callbacks.urls import MAX_CALLBACK_URL_CHARS, check_http_url
from imagegate.catalog import MAX_PROMPT_CHARS, OUTPUT_FORMATS, RENDERING_SPEEDS, SIZES
from imagegate.errors import InvalidRequest
from imagegate.tasks import patterns
from imagegate.tasks.status import TaskStatus

Size = Literal["1:1", "3:4", "9:16", "4:3", "16:9"]
Speed = Literal["TURBO", "BALANCED", "QUALITY"]
OutputFormat = Literal["jpeg", "png"]
# /openapi.json's callback_url: the validator below, as a schema.
CallbackUrl = Annotated[
    str,
    WithJsonSchema({"type": "string", "maxLength": MAX_CALLBACK_URL_CHARS,
                    "pattern": patterns.CALLBACK_URL}),
]  # fmt: skip


class GenerationInput(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        json_schema_extra={"pattern": patterns.PROMPT},  # _not_blank, for /openapi.json
    )
    # null means "use the default", like an absent field.
    size: Size | None = None
    rendering_speed: Speed | None = None
    output_format: OutputFormat | None = None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("blank")
        if "\x00" in value:
            raise ValueError("nul")
        return value

    def resolved(self) -> dict[str, str]:
        return {
            "prompt": self.prompt,
            "size": self.size or "1:1",
            "rendering_speed": self.rendering_speed or "BALANCED",
            "output_format": self.output_format or "jpeg",
        }


class CreateTaskRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    # Any string is parsed; a model not in the catalogue is 404 model_not_found.
    model: str = Field(
        json_schema_extra={"pattern": patterns.MODEL,
                           "description": "An active model of GET /v1/models"},
    )  # fmt: skip
    input: GenerationInput
    callback_url: CallbackUrl | None = None

    @field_validator("callback_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)


class TaskOutputMetadata(BaseModel):
    model: str


class TaskOutput(BaseModel):
    urls: list[str]
    metadata: TaskOutputMetadata


class TaskError(BaseModel):
    code: str
    message: str


def _absent(value: object) -> bool:
    return value is None


class TaskObject(BaseModel):
    """GET /v1/tasks/{taskId}: completed_at and output only when completed, error when failed
    (absent otherwise, also where a task is part of a larger body)."""

    id: str
    status: Literal["pending", "processing", "completed", "failed"]  # TaskStatus, inline
    model: str
    created_at: int
    completed_at: int | None = Field(default=None, exclude_if=_absent)
    output: TaskOutput | None = Field(default=None, exclude_if=_absent)
    error: TaskError | None = Field(default=None, exclude_if=_absent)


assert set(get_args(TaskObject.model_fields["status"].annotation)) == set(TaskStatus)


class TaskCreated(BaseModel):
    taskId: str  # noqa: N815 - the wire name


class CreateTaskResponse(BaseModel):
    code: int = 200
    msg: str = "success"
    data: TaskCreated


_CHOICES = {
    "size": ", ".join(SIZES),
    "rendering_speed": ", ".join(RENDERING_SPEEDS),
    "output_format": ", ".join(OUTPUT_FORMATS),
}


def parse_create_request(raw: bytes) -> CreateTaskRequest:
    """The validated body, or InvalidRequest with a message that names the field."""
    try:
        return CreateTaskRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidRequest(_message(exc.errors()[0])) from None


def _message(error: Any) -> str:
    kind: str = error["type"]
    field = ".".join(str(part) for part in error["loc"])
    if kind == "json_invalid":
        return "Request body is not valid JSON."
    if not field:
        return "Request body must be a JSON object."
    name = str(error["loc"][-1])
    if kind == "missing":
        return f"'{field}' is required."
    if kind == "literal_error":
        return f"'{field}' must be one of: {_CHOICES.get(name, '')}."
    if kind == "string_too_long":
        return f"'{field}' must be at most {MAX_PROMPT_CHARS:,} characters."
    if kind == "value_error" and name == "prompt" and "nul" in str(error.get("msg")):
        return f"'{field}' must not contain NUL characters."
    if kind in ("string_too_short",) or (kind == "value_error" and name == "prompt"):
        return f"'{field}' must not be empty."
    if kind == "value_error" and "too_long" in str(error.get("msg")):
        return f"'{field}' must be at most {MAX_CALLBACK_URL_CHARS:,} characters."
    if kind == "value_error" and "credentials" in str(error.get("msg")):
        return f"'{field}' must not contain credentials."
    if kind == "value_error":
        return f"'{field}' must be an absolute http or https URL."
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"'{field}' must be an object."
    if kind == "string_type" or kind.startswith("literal") or kind == "string_sub_type":
        return f"'{field}' must be a string."
    return f"'{field}' is invalid."


class TaskWithId(BaseModel):
    """A create answered after ``Prefer: wait=N``: the new task's id and the task as it is then."""

    taskId: str  # noqa: N815 - the wire name
    task: TaskObject


class CreateTaskWaitedResponse(BaseModel):
    code: int = 200
    msg: str = "success"
    data: TaskWithId


class TaskList(BaseModel):
    """GET /v1/tasks: newest first; ``next_cursor`` opens the older ones (null at the end)."""

    tasks: list[TaskObject]
    next_cursor: str | None


class TaskListResponse(BaseModel):
    code: int = 200
    msg: str = "success"
    data: TaskList


class UsageCounts(BaseModel):
    """Tasks and credits of a period: credits are counted for the tasks created in it."""

    tasks_created: int
    tasks_completed: int
    tasks_failed: int
    credits_charged: int
    credits_refunded: int
    credits_net: int


class UsageRow(UsageCounts):
    """One group: a UTC day (YYYY-MM-DD), a key's id, or a rendering speed."""

    group: str


class Usage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    group_by: Literal["day", "key", "speed"]
    rows: list[UsageRow]
    total: UsageCounts


class UsageResponse(BaseModel):
    code: int = 200
    msg: str = "success"
    data: Usage
