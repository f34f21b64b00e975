"""GET /images/YYYY/MM/DD/<name>: the hosted images."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from imagegate.errors import UnknownEndpoint
from imagegate.storage.local import LocalImageStore

router = APIRouter()


@router.api_route("/images/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def get_image(key: str, request: Request) -> FileResponse:
    store: LocalImageStore = request.app.state.services.store
    found = store.locate(key)
    if found is None:
        raise UnknownEndpoint(f"Image '{key}' does not exist.")
    path, media_type = found
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
