"""The baseline: a bare FastAPI app doing the least imagegate's two hot endpoints must do.

POST /v1/images/generations validates the body with imagegate's own parser (the same pydantic
model and error messages) and answers a constant task id; GET /v1/tasks/{id} answers a constant
completed task. No authentication, no database. Served by uvicorn with imagegate's options,
under FastAPI's options as imagegate's.

    python bench/bare_app.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from imagegate import heap
from imagegate.app import SERVER_OPTIONS, app_options
from imagegate.tasks.schemas import parse_create_request

CREATED = b'{"code":200,"msg":"success","data":{"taskId":"397ce9f2-c04e-4244-ac33-3af19a7cc297"}}'
TASK = (
    b'{"id":"397ce9f2-c04e-4244-ac33-3af19a7cc297","status":"completed","model":"ideogram-v4",'
    b'"created_at":1781000000,"completed_at":1781000020,"output":{"urls":['
    b'"http://127.0.0.1:8000/images/2026/06/05/abc123abc123abc123abc123abc123ab.jpg"],'
    b'"metadata":{"model":"ideogram-ai/ideogram-v4"}}}'
)

app = FastAPI(**app_options())  # as imagegate's


@app.post("/v1/images/generations")
async def create(request: Request) -> Response:
    parse_create_request(await request.body())
    return Response(CREATED, media_type="application/json")


@app.get("/v1/tasks/{task_id}")
async def get(task_id: str) -> Response:
    return Response(TASK, media_type="application/json")


if __name__ == "__main__":
    heap.settle()  # as `imagegate serve` does once started (imagegate/heap.py)
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
        **SERVER_OPTIONS,
    )  # fmt: skip
