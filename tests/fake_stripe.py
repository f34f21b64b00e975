"""A loopback fake of Stripe: the part of its API that imagegate calls, its hosted Checkout page,
and its signed webhook deliveries, written from Stripe's public API reference.

API (``Authorization: Bearer <secret key>``; any other key gets Stripe's 401):

POST /v1/checkout/sessions       form-encoded as the SDK sends it (``line_items[0][price_data]
                                 [currency]=usd``); answers a ``checkout.session`` (cs_test_...,
                                 status open, payment_status unpaid, ``url`` on this fake)
GET  /v1/checkout/sessions/{id}  the session, or Stripe's 404 (resource_missing)

Hosted Checkout (what the buyer's browser sees):

GET  /pay/{id}   the amount, a "Pay" button (a real form) and a "Cancel" link (to cancel_url)
POST /pay/{id}   pays: the session becomes complete and paid, ``checkout.session.completed`` is
                 delivered to ``webhook_url`` signed with the real scheme (``Stripe-Signature:
                 t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>``), then the browser is
                 sent to success_url with ``{CHECKOUT_SESSION_ID}`` filled in. With ``hold`` set,
                 deliveries wait for ``release()``, as Stripe's may arrive after the buyer.

``create_errors`` scripts the next creates' HTTP statuses (500, 402, ...). ``event``,
``signature`` and ``signed`` build and sign arbitrary events; ``refunded`` and ``disputed``
build the charge events of a paid session.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape
from typing import Any
from urllib.parse import parse_qsl

import httpx
from pydantic import SecretStr
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from harness import serve_asgi
from imagegate.billing import service as billing
from imagegate.config import Settings
from imagegate.db.models import Account
from imagegate.services import Services

API_KEY = "sk_test_51ImagegateFakeKey0123456789abcdefABCDEF"
WEBHOOK_SECRET = "whsec_imagegateFakeSigningSecret0123456789"
API_VERSION = "2025-09-30.clover"
PACKS = ((500, "2.50"), (2000, "10"))


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{secrets.token_urlsafe(length * 3 // 4).replace('-', 'a').replace('_', 'b')}"


def signature(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends with ``payload``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(kind: str, data_object: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """A v1 (snapshot) event of type ``kind`` about ``data_object``."""
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def signed(
    body: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The payload and headers of a delivery of ``body``, as Stripe posts it."""
    payload = json.dumps(body, indent=2).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": signature(payload, secret, timestamp),
    }
    return payload, headers


def stripe_error(status: int, message: str, **fields: str) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", **fields}}
    return JSONResponse(body, status_code=status, headers={"Request-Id": new_id("req", 14)})


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) as nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        path = [head, *(rest[:-1].split("][") if rest else [])]
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = {key: _lists(value) for key, value in node.items()}
    if node and all(key.isdigit() for key in node):
        return [node[key] for key in sorted(node, key=int)]
    return node


def _missing(params: dict[str, Any]) -> str | None:
    """The first required parameter the create call lacks, as Stripe names it."""
    if params.get("mode") not in ("payment", "setup", "subscription"):
        return "mode"
    if not params.get("success_url"):
        return "success_url"
    items = params.get("line_items")
    if not isinstance(items, list) or not items:
        return "line_items"
    for n, item in enumerate(items):
        data = item.get("price_data") or {}
        for name in ("currency", "unit_amount"):
            if not data.get(name):
                return f"line_items[{n}][price_data][{name}]"
        if not (data.get("product_data") or {}).get("name"):
            return f"line_items[{n}][price_data][product_data][name]"
        if not str(item.get("quantity", "")).isdigit():
            return f"line_items[{n}][quantity]"
    return None


@dataclass
class FakeStripe:
    api_key: str = API_KEY
    webhook_secret: str = WEBHOOK_SECRET
    webhook_url: str = ""  # imagegate's /webhooks/stripe
    base_url: str = ""
    hold: bool = False  # keep deliveries until release()
    create_errors: list[int] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # each create's form
    headers: list[dict[str, str]] = field(default_factory=list)  # of every API request
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)  # by session id
    held: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[tuple[str, int]] = field(default_factory=list)  # (event type, status)
    _idempotent: dict[str, dict[str, Any]] = field(default_factory=dict)
    _http: httpx.AsyncClient | None = None

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[FakeStripe]:
        async with httpx.AsyncClient(timeout=30) as http, serve_asgi(self.app()) as url:
            self._http, self.base_url = http, url
            yield self

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/checkout/sessions", self.create, methods=["POST"]),
                Route("/v1/checkout/sessions/{id}", self.retrieve, methods=["GET"]),
                Route("/pay/{id}", self.page, methods=["GET"]),
                Route("/pay/{id}", self.pay, methods=["POST"]),
            ]
        )

    def _refused(self, request: Request) -> Response | None:
        self.headers.append(dict(request.headers))
        given = request.headers.get("authorization", "")
        if given == f"Bearer {self.api_key}":
            return None
        if not given:
            return stripe_error(401, "You did not provide an API key.")
        return stripe_error(401, f"Invalid API Key provided: {given[7:12]}****{given[-4:]}")

    async def create(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        if self.create_errors:
            status = self.create_errors.pop(0)
            return stripe_error(status, "Scripted failure.", type="api_error")
        key = request.headers.get("idempotency-key", "")
        if key in self._idempotent:
            return JSONResponse(self._idempotent[key])
        params = parse_form(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        missing = _missing(params)
        if missing is not None:
            message = f"Missing required param: {missing}."
            return stripe_error(400, message, param=missing, code="parameter_missing")
        checkout = self._new_session(params)
        self.params[checkout["id"]] = params
        if key:
            self._idempotent[key] = checkout
        return JSONResponse(checkout, headers={"Request-Id": new_id("req", 14)})

    def _new_session(self, params: dict[str, Any]) -> dict[str, Any]:
        items = params["line_items"]
        total = sum(int(i["price_data"]["unit_amount"]) * int(i["quantity"]) for i in items)
        session_id = new_id("cs_test", 58)
        now = int(time.time())
        checkout = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": now,
            "currency": items[0]["price_data"]["currency"],
            "customer": None,
            "customer_details": None,
            "expires_at": now + 86400,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "mode": params["mode"],
            "payment_intent": None,
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params["success_url"],
            "url": f"{self.base_url}/pay/{session_id}",
        }
        self.sessions[session_id] = checkout
        return checkout

    async def retrieve(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        found = self.sessions.get(request.path_params["id"])
        if found is None:
            message = f"No such checkout.session: '{request.path_params['id']}'"
            return stripe_error(404, message, param="session", code="resource_missing")
        return JSONResponse(found)

    async def page(self, request: Request) -> Response:
        found = self.sessions.get(request.path_params["id"])
        if found is None or found["status"] != "open":
            return HTMLResponse("<h1>This Checkout Session is no longer available.</h1>", 404)
        name = self.params[found["id"]]["line_items"][0]["price_data"]["product_data"]["name"]
        amount = f"{found['amount_total'] / 100:.2f} {found['currency'].upper()}"
        return HTMLResponse(
            f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Fake Stripe Checkout</title></head><body><main>
<h1>Pay {escape(amount)}</h1><p>{escape(name)} × 1</p>
<form method="post" action="/pay/{escape(found["id"])}"><button type="submit">Pay</button></form>
<p><a href="{escape(found["cancel_url"] or "/")}">Cancel</a></p></main></body></html>"""
        )

    async def pay(self, request: Request) -> Response:
        session_id = request.path_params["id"]
        if self.sessions.get(session_id, {}).get("status") != "open":
            return HTMLResponse("<h1>This Checkout Session is no longer available.</h1>", 404)
        await self.send(self.complete(session_id))
        success = self.sessions[session_id]["success_url"]
        return RedirectResponse(success.replace("{CHECKOUT_SESSION_ID}", session_id), 303)

    def complete(self, session_id: str, payment_status: str = "paid") -> dict[str, Any]:
        """Pay the session (paid, or unpaid for a delayed method); its completed event."""
        checkout = self.sessions[session_id]
        intent = checkout["payment_intent"] or new_id("pi")
        checkout.update(status="complete", payment_status=payment_status, payment_intent=intent)
        return event("checkout.session.completed", dict(checkout))

    def async_succeeded(self, session_id: str) -> dict[str, Any]:
        """A delayed payment went through: the session's async_payment_succeeded event."""
        checkout = self.sessions[session_id]
        checkout.update(payment_status="paid")
        return event("checkout.session.async_payment_succeeded", dict(checkout))

    def _charge(self, session_id: str) -> dict[str, Any]:
        checkout = self.sessions[session_id]
        return self.charges.setdefault(
            session_id,
            {
                "id": new_id("ch"),
                "object": "charge",
                "amount": checkout["amount_total"],
                "amount_captured": checkout["amount_total"],
                "amount_refunded": 0,
                "captured": True,
                "currency": checkout["currency"],
                "metadata": {},
                "paid": True,
                "payment_intent": checkout["payment_intent"],
                "refunded": False,
                "status": "succeeded",
            },
        )

    def refunded(self, session_id: str, amount: int | None = None) -> dict[str, Any]:
        """Refund ``amount`` (all by default) of the session's charge: charge.refunded."""
        charge = self._charge(session_id)
        charge["amount_refunded"] += charge["amount"] if amount is None else amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        return event("charge.refunded", dict(charge))

    def disputed(self, session_id: str) -> dict[str, Any]:
        """The buyer disputes the session's charge: charge.dispute.created."""
        charge = self._charge(session_id)
        dispute = {
            "id": new_id("du"),
            "object": "dispute",
            "amount": charge["amount"],
            "charge": charge["id"],
            "currency": charge["currency"],
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "reason": "fraudulent",
            "status": "needs_response",
        }
        return event("charge.dispute.created", dispute)

    async def send(self, body: dict[str, Any]) -> None:
        """Deliver ``body`` to imagegate now, or when released if ``hold`` is set."""
        if self.hold:
            self.held.append(body)
        else:
            await self.deliver(body)

    async def release(self) -> None:
        self.hold = False
        while self.held:
            await self.deliver(self.held.pop(0))

    async def deliver(
        self, body: dict[str, Any], secret: str | None = None, timestamp: int | None = None
    ) -> httpx.Response:
        """One signed delivery of ``body`` to imagegate's webhook URL."""
        assert self._http is not None, "use serving()"
        assert self.webhook_url, "set webhook_url (stripe_settings does)"
        payload, headers = signed(body, secret or self.webhook_secret, timestamp)
        response = await self._http.post(self.webhook_url, content=payload, headers=headers)
        self.deliveries.append((body["type"], response.status_code))
        return response


def stripe_settings(settings: Settings, fake: FakeStripe) -> Settings:
    """``settings`` selling PACKS through ``fake``, whose deliveries go to this server."""
    fake.webhook_url = f"{settings.resolved_public_url}/webhooks/stripe"
    return settings.model_copy(
        update={
            "topup_packs": tuple((credits, Decimal(price)) for credits, price in PACKS),
            "stripe_api_key": SecretStr(fake.api_key),
            "stripe_webhook_secret": SecretStr(fake.webhook_secret),
            "stripe_api_base": fake.base_url,
        }
    )


async def ledgers_add_up(services: Services) -> None:
    """Every account's balance equals the sum of its ledger entries."""
    async with services.db.sessions() as session:
        for account_id in await session.scalars(select(Account.id)):
            balance = await billing.balance(session, account_id)
            assert balance == await billing.ledger_sum(session, account_id), account_id
