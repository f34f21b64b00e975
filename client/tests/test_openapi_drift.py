"""The SDK's models and error table against the server's own: /openapi.json fetched from a running
imagegate, and imagegate.errors. A field, enum value or error code added on one side only fails
here."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from harness import Server
from imagegate import errors as server_errors
from imagegate_client import (
    APIError,
    Credits,
    Model,
    ModelPrices,
    ModelSize,
    Task,
    TaskError,
    TaskOutput,
    Usage,
    UsageCounts,
    UsageRow,
)
from imagegate_client._exceptions import error_from_response
from imagegate_client._models import (
    CreateTaskRequest,
    GenerationInput,
    ModelList,
    TaskCreated,
    TaskList,
    TaskOutputMetadata,
    TaskWithId,
)

# Server schema name -> the SDK model that must have its shape.
PAIRS: dict[str, type[BaseModel]] = {
    "TaskObject": Task,
    "TaskOutput": TaskOutput,
    "TaskOutputMetadata": TaskOutputMetadata,
    "TaskError": TaskError,
    "TaskCreated": TaskCreated,
    "CreateTaskRequest": CreateTaskRequest,
    "GenerationInput": GenerationInput,
    "TaskWithId": TaskWithId,
    "TaskList": TaskList,
    "UsageCounts": UsageCounts,
    "UsageRow": UsageRow,
    "Usage": Usage,
    "ModelObject": Model,
    "ModelPrices": ModelPrices,
    "ModelSize": ModelSize,
    "ModelList": ModelList,
}
SERVER_NAME = {model.__name__: name for name, model in PAIRS.items()}


@pytest.fixture
async def openapi(server: Server) -> dict[str, Any]:
    response = await server.http.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def shape(prop: dict[str, Any], rename: dict[str, str]) -> Any:
    """What the SDK depends on in a property's schema: types, enum values, nested models.
    Titles, defaults and length limits are the server's to enforce, so they are left out."""
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[1]
        return ("model", rename.get(name, name))
    if "anyOf" in prop:
        return ("anyOf", sorted(repr(shape(option, rename)) for option in prop["anyOf"]))
    if "enum" in prop:
        return ("enum", prop.get("type"), sorted(prop["enum"]))
    if prop.get("type") == "array":
        return ("array", shape(prop["items"], rename))
    return ("type", prop.get("type"))


def summary(schema: dict[str, Any], rename: dict[str, str]) -> dict[str, Any]:
    properties = schema.get("properties", {})
    return {
        "required": sorted(schema.get("required", [])),
        "properties": {name: shape(prop, rename) for name, prop in properties.items()},
    }


@pytest.mark.parametrize("server_name", list(PAIRS))
def test_each_sdk_model_has_the_servers_fields_enums_and_requiredness(
    openapi: dict[str, Any], server_name: str
) -> None:
    server_schema = openapi["components"]["schemas"][server_name]
    sdk_schema = PAIRS[server_name].model_json_schema(by_alias=True)
    assert summary(sdk_schema, SERVER_NAME) == summary(server_schema, {})


def response_schema(openapi: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    operation = openapi["paths"][path][method]
    schema: dict[str, Any] = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return schema


def ref_name(schema: dict[str, Any]) -> str:
    ref: str = schema["$ref"]
    return ref.rsplit("/", 1)[1]


def enveloped(openapi: dict[str, Any], envelope: dict[str, Any]) -> str:
    """The schema name of the data of a success envelope {"code", "msg", "data"}."""
    properties = openapi["components"]["schemas"][ref_name(envelope)]["properties"]
    assert set(properties) == {"code", "msg", "data"}
    return ref_name(properties["data"])


def test_the_endpoints_the_sdk_calls_answer_with_those_models(openapi: dict[str, Any]) -> None:
    paths = openapi["paths"]
    for path, method in (("/v1/tasks/{taskId}", "get"), ("/v1/tasks/{taskId}/cancel", "post")):
        assert response_schema(openapi, path, method) == {"$ref": "#/components/schemas/TaskObject"}
    # A create answers {"taskId"}, or {"taskId", "task"} when asked to wait.
    created = response_schema(openapi, "/v1/images/generations", "post")["anyOf"]
    assert sorted(enveloped(openapi, option) for option in created) == ["TaskCreated", "TaskWithId"]
    create = paths["/v1/images/generations"]["post"]
    body = create["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/CreateTaskRequest")
    headers = {p["name"] for p in create["parameters"] if p["in"] == "header"}
    assert {"Idempotency-Key", "Prefer"} <= headers
    wait = [p for p in paths["/v1/tasks/{taskId}"]["get"]["parameters"] if p["name"] == "wait"]
    assert wait[0]["schema"]["maximum"] == 60
    assert enveloped(openapi, response_schema(openapi, "/v1/tasks", "get")) == "TaskList"
    assert enveloped(openapi, response_schema(openapi, "/v1/usage", "get")) == "Usage"
    query = {p["name"] for p in paths["/v1/tasks"]["get"]["parameters"]}
    assert query == {"status", "created_after", "created_before", "limit", "cursor"}
    query = {p["name"] for p in paths["/v1/usage"]["get"]["parameters"]}
    assert query == {"from", "to", "group_by"}
    events = paths["/v1/tasks/{taskId}/events"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in events
    for path in ("/v1/credits", "/v1/webhooks/secret"):
        assert "get" in paths[path]


async def test_credits_matches_the_server(server: Server, openapi: dict[str, Any]) -> None:
    account = await server.account(123)
    response = await server.http.get("/v1/credits", headers=account.headers)
    data = response.json()["data"]
    assert set(data) == set(Credits.model_fields)
    assert Credits.model_validate(data).credits == 123
    schema = response_schema(openapi, "/v1/credits", "get")
    assert "$ref" in schema, "GET /v1/credits has a response schema"
    envelope = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    ref = envelope["properties"]["data"]["$ref"].rsplit("/", 1)[1]
    assert summary(Credits.model_json_schema(), {}) == summary(
        openapi["components"]["schemas"][ref], {}
    )


def test_models_answers_with_the_sdks_model_list(openapi: dict[str, Any]) -> None:
    assert enveloped(openapi, response_schema(openapi, "/v1/models", "get")) == "ModelList"
    assert "parameters" not in openapi["paths"]["/v1/models"]["get"]


def server_error_table() -> list[type[server_errors.ApiError]]:
    return [server_errors.ApiError, *server_errors.ApiError.__subclasses__()]


@pytest.mark.parametrize("error", server_error_table(), ids=lambda error: error.code)
def test_every_server_error_code_has_its_own_sdk_class(error: type[server_errors.ApiError]) -> None:
    response = httpx.Response(error.status, json=error().envelope())
    raised = error_from_response(response)
    assert type(raised) is not APIError
    assert (type(raised).status, type(raised).error_code) == (error.status, error.code)
    assert (raised.code, raised.type, raised.message) == (error.code, error.type, error().message)
