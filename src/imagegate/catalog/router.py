"""GET /v1/models: the models the calling key may use, at the prices its account pays."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from imagegate.billing.plans import planned_price
from imagegate.catalog import OUTPUT_FORMATS, RENDERING_SPEEDS, SIZES, CatalogModel
from imagegate.catalog.schemas import ModelListResponse
from imagegate.envelope import success
from imagegate.http_docs import responses
from imagegate.http_routes import get_and_head
from imagegate.services import Services
from imagegate.tasks.admission import admit_creator

router = APIRouter()


@get_and_head(router, "/v1/models", response_model=ModelListResponse, responses=responses())
async def list_models(request: Request) -> dict[str, Any]:
    """The active models this key may use, by name, with the credits per image this account
    pays for each rendering speed (its price plan applied)."""
    services: Services = request.app.state.services
    creator = await admit_creator(request, services)  # the create's one-statement checks
    return success({"models": [model_json(m, creator.plan_ratio) for m in creator.offered()]})


def model_json(model: CatalogModel, ratio: str | None) -> dict[str, Any]:
    return {
        "name": model.name,
        "title": model.title,
        "prices": {speed: planned_price(model.price(speed), ratio) for speed in RENDERING_SPEEDS},
        "sizes": [
            {"size": size, "width": SIZES[size][0], "height": SIZES[size][1]}
            for size in model.sizes
        ],
        "output_formats": list(OUTPUT_FORMATS),
        "rendering_speeds": list(RENDERING_SPEEDS),
    }
