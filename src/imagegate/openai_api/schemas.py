"""OpenAI's Images API bodies: the generation request as its SDKs send it, and the answers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegate.errors import InvalidRequest

MAX_IMAGES = 10  # OpenAI's n is 1-10


class ImageRequest(BaseModel):
    """POST /openai/v1/images/generations. Fields OpenAI has that imagegate does not use
    (``style``, ``background``, ``moderation``, ``user``…) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="An active model of GET /openai/v1/models")
    prompt: str
    n: int | None = Field(default=None, ge=1, le=MAX_IMAGES)
    size: str | None = None
    quality: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: Literal["png", "jpeg"] | None = None
    user: str | None = None


class Image(BaseModel):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str


class PendingTask(BaseModel):
    """An image still being made when the wait ran out: its task in the task API."""

    id: str
    status: str
    url: str  # GET it with the same key


class ImagesResponse(BaseModel):
    created: int
    data: list[Image]
    # Only when the wait ran out (HTTP 202): the images not made yet.
    pending: list[PendingTask] | None = None


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


def parse_request(raw: bytes) -> ImageRequest:
    """The request, or InvalidRequest naming the field as OpenAI does."""
    try:
        return ImageRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidRequest(_message(exc.errors()[0])) from None


def _message(error: Any) -> str:
    kind: str = error["type"]
    field = ".".join(str(part) for part in error["loc"])
    if kind == "json_invalid":
        return "We could not parse the JSON body of your request."
    if not field:
        return "The request body must be a JSON object."
    if kind == "missing":
        return f"'{field}' is a required property."
    if field == "n":
        return f"'n' must be a whole number from 1 to {MAX_IMAGES}."
    if kind == "literal_error":
        return f"'{field}' must be one of: {error['ctx']['expected']}."
    return f"'{field}' is invalid: {error['msg']}."
