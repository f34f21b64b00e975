"""Routes answering GET and HEAD: one operation in /openapi.json (GET), HEAD served alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

Endpoint = Callable[..., Any]


def get_and_head(router: APIRouter, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """Like ``@router.get(path)``, plus the same endpoint for HEAD, left out of the schema so
    the two do not share an operation id."""

    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(path, endpoint, methods=["GET"], **options)
        router.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False, **options)
        return endpoint

    return register
