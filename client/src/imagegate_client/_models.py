"""The wire format's objects as typed models. Unknown fields are ignored, so a server that adds
fields does not break the SDK; tests compare these models with imagegate's /openapi.json."""

from __future__ import annotations

from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

TaskStatus = Literal["pending", "processing", "completed", "failed"]
Size = Literal["1:1", "3:4", "9:16", "4:3", "16:9"]
RenderingSpeed = Literal["TURBO", "BALANCED", "QUALITY"]
OutputFormat = Literal["jpeg", "png"]

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


class TaskCreated(_Model):
    """The data of POST /v1/images/generations."""

    model_config = ConfigDict(populate_by_name=True)

    task_id: str = Field(alias="taskId")


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
    default (1:1, BALANCED, jpeg, no callback, ideogram-v4)."""

    size: Size | None
    rendering_speed: RenderingSpeed | None
    output_format: OutputFormat | None
    callback_url: str | None
    model: str
