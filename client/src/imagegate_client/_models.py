"""The wire format's objects as typed models. Unknown fields are ignored, so a server that adds
fields does not break the SDK; tests compare these models with imagegate's /openapi.json."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

TaskStatus = Literal["pending", "processing", "completed", "failed"]
Size = Literal["1:1", "3:4", "9:16", "4:3", "16:9"]
RenderingSpeed = Literal["TURBO", "BALANCED", "QUALITY"]
OutputFormat = Literal["jpeg", "png"]
#: How usage() groups its rows: by UTC day, by API key id, or by rendering speed.
UsageGroup = Literal["day", "key", "speed"]

DEFAULT_MODEL = "ideogram-v4"
#: Credits per image by rendering speed, from the reference's price table (size and format do
#: not change the price). A failed task is refunded, so it costs nothing.
PRICES: dict[str, int] = {"TURBO": 16, "BALANCED": 28, "QUALITY": 44}
#: File name extensions by output format.
EXTENSIONS: dict[str, str] = {"jpeg": "jpg", "png": "png"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TaskOutputMetadata(_Model):
    model: str


class TaskOutput(_Model):
    urls: list[str]
    metadata: TaskOutputMetadata


class TaskError(_Model):
    code: str
    message: str


class Task(_Model):
    """A task as GET /v1/tasks/{taskId} returns it (and as a callback carries it). Times are
    Unix seconds; ``output`` and ``completed_at`` only when completed, ``error`` when failed."""

    id: str
    status: TaskStatus
    model: str
    created_at: int
    completed_at: int | None = None
    output: TaskOutput | None = None
    error: TaskError | None = None

    @property
    def finished(self) -> bool:
        """Whether the task reached a final status (completed or failed)."""
        return self.status in ("completed", "failed")

    @property
    def urls(self) -> list[str]:
        """The image URLs of a completed task (empty otherwise)."""
        return list(self.output.urls) if self.output else []


class Credits(_Model):
    """GET /v1/credits: the account's balance."""

    credits: int


class ModelPrices(_Model):
    """Credits per image by rendering speed, as the calling account pays them (its price plan
    applied). ``prices["TURBO"]`` reads one too."""

    TURBO: int
    BALANCED: int
    QUALITY: int

    def __getitem__(self, rendering_speed: RenderingSpeed) -> int:
        price: int = getattr(self, rendering_speed)
        return price


class ModelSize(_Model):
    """A size preset a model offers (``size=`` of create) and its pixels."""

    size: Size
    width: int
    height: int


class Model(_Model):
    """A model GET /v1/models lists: one the API key may use, active now. ``name`` is what
    create(model=...) takes."""

    name: str
    title: str
    prices: ModelPrices
    sizes: list[ModelSize]
    output_formats: list[OutputFormat]
    rendering_speeds: list[RenderingSpeed]


class ModelList(_Model):
    """The data of GET /v1/models."""

    models: list[Model]


class TaskCreated(_Model):
    """The data of POST /v1/images/generations."""

    model_config = ConfigDict(populate_by_name=True)

    task_id: str = Field(alias="taskId")


class TaskWithId(_Model):
    """The data of POST /v1/images/generations sent with ``Prefer: wait=N``: the task's id and
    the task as it was when the server answered."""

    model_config = ConfigDict(populate_by_name=True)

    task_id: str = Field(alias="taskId")
    task: Task


class TaskList(_Model):
    """The data of GET /v1/tasks: a page of tasks, newest first; ``next_cursor`` asks for the
    next (older) page, None on the last one."""

    tasks: list[Task]
    next_cursor: str | None

    @model_validator(mode="before")
    @classmethod
    def _last_page_may_omit_the_cursor(cls, data: Any) -> Any:
        # A server that leaves out null fields ends its last page without next_cursor.
        if isinstance(data, dict) and "next_cursor" not in data:
            return {**data, "next_cursor": None}
        return data


class UsageCounts(_Model):
    """Tasks and credits of a period (or of one group of it). A task and its credits count on
    the UTC day it was created; ``credits_net`` is charged minus refunded."""

    tasks_created: int
    tasks_completed: int
    tasks_failed: int
    credits_charged: int
    credits_refunded: int
    credits_net: int


class UsageRow(UsageCounts):
    """One group of a Usage: ``group`` is a UTC day (YYYY-MM-DD), a key's id, or a rendering
    speed (TURBO, BALANCED, QUALITY), by the Usage's ``group_by``."""

    group: str


class Usage(_Model):
    """GET /v1/usage: the account's usage over the UTC days ``from_`` to ``to`` (inclusive), one
    row per group, and the ``total``."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    group_by: UsageGroup
    rows: list[UsageRow]
    total: UsageCounts


class WebhookSecret(_Model):
    """The data of GET /v1/webhooks/secret (imagegate's own endpoint)."""

    secret: str


class GenerationInput(_Model):
    """The ``input`` of a create request; None leaves a field to the server's default
    (1:1, BALANCED, jpeg)."""

    prompt: str
    size: Size | None = None
    rendering_speed: RenderingSpeed | None = None
    output_format: OutputFormat | None = None


class CreateTaskRequest(_Model):
    """The body of POST /v1/images/generations."""

    model: str
    input: GenerationInput
    callback_url: str | None = None


class CreateOptions(TypedDict, total=False):
    """The optional arguments of create() and generate(); None or absent means the server's
    default (1:1, BALANCED, jpeg, no callback, ideogram-v4). ``idempotency_key`` is sent as the
    Idempotency-Key header (1 to 255 printable ASCII characters; default: a new random key per
    call): within 24 hours, a create sent again with the same key and body answers with the
    same task, charged once."""

    size: Size | None
    rendering_speed: RenderingSpeed | None
    output_format: OutputFormat | None
    callback_url: str | None
    model: str
    idempotency_key: str | None
