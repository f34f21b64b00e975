"""Admitting a create: every check between the request and the charging write, in one order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request

from imagegate.callbacks.ssrf import Unresolvable, UnsafeDestination, resolve
from imagegate.catalog import CatalogModel
from imagegate.db.sql import Tx
from imagegate.errors import InternalError, InvalidRequest, UpstreamUnavailable
from imagegate.keys.auth import admit
from imagegate.keys.service import Principal, key_hash
from imagegate.keys.store import CALLER_WIDTH
from imagegate.metrics import record
from imagegate.services import Services
from imagegate.tasks import idempotency, service
from imagegate.tasks.schemas import CreateTaskRequest, parse_create_request
from imagegate.tasks.service import admitted_model


@dataclass(frozen=True)
class Creator:
    """A caller that may create: its key, the catalogue as of its read, its account's plan."""

    caller: Principal
    models: Mapping[str, CatalogModel]
    plan_ratio: str | None  # the account's price plan (billing/plans.py); None: list prices

    def offered(self) -> list[CatalogModel]:
        """The active models the caller's key may use, by name (what model lists show)."""
        return [
            model
            for name, model in sorted(self.models.items())
            if model.active and self.caller.may_use(name)
        ]


async def admit_creator(request: Request, services: Services) -> Creator:
    """The key (401), its IP allowlist (403) and rate limit (429) (keys/auth.py's admit), from
    one statement that also reads the catalogue's version and the account's plan."""
    hashed = key_hash(services.hasher, request.headers.get("authorization"))
    row = await services.reads.creator(hashed)
    caller = await admit(request, services, row)
    assert row is not None
    version, plan_ratio = row[CALLER_WIDTH:]
    return Creator(caller, await services.catalog.at(version), plan_ratio)


@dataclass(frozen=True)
class Admitted:
    caller: Principal
    body: CreateTaskRequest
    model: CatalogModel
    key: idempotency.IdempotencyKey | None
    plan_ratio: str | None


async def admit_create(request: Request, services: Services) -> Admitted:
    """The checks of POST /v1/images/generations, in this order: the caller's (admit_creator),
    the body (400, a callback_url that reaches this network included), the model (404:
    unknown, inactive, or outside the key's model allowlist; 400: a size it does not offer),
    the Idempotency-Key header (400). create() goes on: a provider that can take it now (503);
    spend limits (429) and the balance (402) come last, in the charging write
    (tasks/service.py's create_task), so they hold under concurrency."""
    creator = await admit_creator(request, services)
    body = parse_create_request(await read_body(request, services.settings.max_body_bytes))
    if body.callback_url is not None:
        await check_callback_url(body.callback_url, services.settings.callback_allow_private)
    model = admitted_model(creator.caller, body, creator.models)
    key = idempotency.requested(request.headers, body)
    return Admitted(creator.caller, body, model, key, creator.plan_ratio)


@dataclass(frozen=True)
class Created:
    task_id: str
    replayed: bool  # an earlier create with the same Idempotency-Key made it


async def create(services: Services, admitted: Admitted) -> Created:
    """The admitted create's task: the one its Idempotency-Key already made, or a new one once a
    provider can take it (503 otherwise), charged in its transaction (tasks/service.py)."""
    key, account_id = admitted.key, admitted.caller.account_id
    if key is not None:
        now = services.clock.now()
        found = await services.db.read(lambda tx: idempotency.replay(tx, account_id, key, now))
        if found is not None:
            return Created(found, replayed=True)
    try:
        [task_id] = await create_tasks(services, admitted, 1)
    except idempotency.KeyTaken:  # a create with this key committed first: answer with its task
        assert key is not None
        now = services.clock.now()
        found = await services.db.read(lambda tx: idempotency.replay(tx, account_id, key, now))
        if found is None:
            raise InternalError() from None  # (its row expired within this very request)
        return Created(found, replayed=True)
    return Created(task_id, replayed=False)


async def create_tasks(services: Services, admitted: Admitted, count: int) -> list[str]:
    """``count`` tasks of the admitted request, all or none: once a provider can take them
    (503 otherwise), in one transaction, each charged (a refused charge keeps none)."""
    model, body, ratio = admitted.model, admitted.body, admitted.plan_ratio
    if not await services.providers.available(model):
        raise UpstreamUnavailable(
            f"No provider can take '{model.name}' tasks right now (nothing was charged); "
            "try again later."
        )
    now, caller, queue = services.clock.now(), admitted.caller, services.queue
    tasks = [service.new_task(caller, body, now, model, ratio) for _ in range(count)]

    async def write(tx: Tx) -> None:
        for task in tasks:
            await service.create_task(tx, queue, task, admitted.key)

    grouped, written = services.creates, False
    if grouped and count == 1 and service.fits_one_statement(caller, admitted.key):
        written = await grouped.submit((tasks[0], service.run_job(queue, tasks[0])))
    if not written:  # (also when the grouped statement took no charge: the transaction says why)
        await services.db.write(write)
    for task in tasks:
        record.task_created(model.name, task.input["rendering_speed"], task.price)
    return [task.id for task in tasks]


async def check_callback_url(url: str, allow_private: bool) -> None:
    """Refuse a callback_url that reaches this network (see callbacks/ssrf.py); a host with no
    address yet is accepted and checked again at each delivery."""
    try:
        await resolve(url, allow_private)
    except Unresolvable:
        return
    except UnsafeDestination as exc:
        raise InvalidRequest(f"'callback_url' is not allowed: {exc}.") from None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise InvalidRequest(f"Request body is larger than {limit:,} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidRequest(f"Request body is larger than {limit:,} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
