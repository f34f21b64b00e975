"""The wire shape of GET /v1/models, for /openapi.json."""

from __future__ import annotations

from pydantic import BaseModel, Field

from imagegate.tasks.schemas import OutputFormat, Size, Speed


class ModelPrices(BaseModel):
    """Credits per image by rendering speed, as the calling account pays them."""

    TURBO: int = Field(ge=0)
    BALANCED: int = Field(ge=0)
    QUALITY: int = Field(ge=0)


class ModelSize(BaseModel):
    """A size preset the model offers (``input.size``) and its pixels."""

    size: Size
    width: int
    height: int


class ModelObject(BaseModel):
    name: str = Field(description="What a create sends as `model`")
    title: str
    prices: ModelPrices
    sizes: list[ModelSize]
    output_formats: list[OutputFormat]
    rendering_speeds: list[Speed]


class ModelList(BaseModel):
    models: list[ModelObject]


class ModelListResponse(BaseModel):
    code: int = 200
    msg: str = "success"
    data: ModelList
