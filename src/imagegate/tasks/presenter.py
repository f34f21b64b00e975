"""Task rows to the wire format of the reference (also the body of callbacks)."""

from __future__ import annotations

import json
from typing import Any

from imagegate.catalog import MODELS
from imagegate.db.models import Task


def task_object(task: Task, public_url: str) -> dict[str, Any]:
    """The task exactly as GET /v1/tasks/{taskId} shows it; keys in the reference's order."""
    body: dict[str, Any] = {
        "id": task.id,
        "status": task.status,
        "model": task.model,
        "created_at": int(task.created_at),
    }
    if task.status == "completed":
        body["completed_at"] = int(task.completed_at or task.created_at)
        body["output"] = {
            "urls": [f"{public_url}/images/{key}" for key in task.output_urls or []],
            "metadata": {"model": _upstream_model(task.model)},
        }
    elif task.status == "failed":
        body["error"] = {
            "code": task.error_code or "upstream_error",
            "message": task.error_message or "Image generation failed",
        }
    return body


def render_json(body: dict[str, Any]) -> bytes:
    """The exact bytes served for ``body`` (compact UTF-8, like Starlette's JSONResponse), so a
    callback carries byte-for-byte what GET /v1/tasks/{taskId} returns."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _upstream_model(model: str) -> str:
    entry = MODELS.get(model)
    return entry.upstream_model if entry else model
