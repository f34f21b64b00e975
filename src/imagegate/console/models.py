"""The operator's catalogue page: the models offered (create, edit, activate, deactivate) and the
price plans (create or change one).

HTTP only: every rule is in catalog/service.py and billing/plans.py, the functions the admin CLI
(cli/models.py) calls too. This module only turns the forms' text into their arguments. Members
get 404 here, as on every operator page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from imagegate.billing import plans
from imagegate.catalog import RENDERING_SPEEDS, SIZES, CatalogModel
from imagegate.catalog import service as catalog
from imagegate.catalog.service import CatalogError, ModelChange, ModelMissing
from imagegate.console.auth import Operator, PageNotFound, checked_form, text
from imagegate.console.operators import HELPERS
from imagegate.console.web import redirect, render, services_of
from imagegate.db.sql import SessionTx
from imagegate.providers.base import PROVIDER_NAMES
from imagegate.users.service import SignedIn

router = APIRouter(prefix="/console/admin")

MODELS = "/console/admin/models"
DEFAULT_ROUTE = "default"


def route_text(providers: tuple[str, ...] | None) -> str:
    return DEFAULT_ROUTE if providers is None else ", ".join(providers)


def _price_field(speed: str) -> str:
    return f"price_{speed.lower()}"


@dataclass
class ModelForm:
    """The model form's fields as text, as typed: kept when a value is refused."""

    name: str = ""
    title: str = ""
    prices: dict[str, str] = field(default_factory=lambda: dict.fromkeys(RENDERING_SPEEDS, ""))
    reports: str = ""
    sizes: list[str] = field(default_factory=lambda: list(SIZES))
    route: str = DEFAULT_ROUTE
    upstream: str = "{}"
    queue: str = ""

    @classmethod
    def posted(cls, form: FormData) -> ModelForm:
        upstream = form.get("upstream")
        return cls(
            name=text(form, "name"),
            title=text(form, "title"),
            prices={speed: text(form, _price_field(speed)) for speed in RENDERING_SPEEDS},
            reports=text(form, "reports"),
            sizes=[s for s in form.getlist("sizes") if isinstance(s, str)],
            route=text(form, "route"),
            upstream=upstream if isinstance(upstream, str) else "",
            queue=text(form, "queue"),
        )

    @classmethod
    def of(cls, model: CatalogModel) -> ModelForm:
        return cls(
            name=model.name,
            title=model.title,
            prices={speed: str(model.prices.get(speed, "")) for speed in RENDERING_SPEEDS},
            reports=model.reports,
            sizes=list(model.sizes),
            route=route_text(model.providers),
            upstream=json.dumps(model.upstream, indent=2),
            queue=model.queue,
        )

    def change(self, creating: bool) -> ModelChange:
        """Every field of the form as a ModelChange; CatalogError for text that cannot be read
        (whether a value is allowed is the service's to say). On create an empty queue is the
        default queue; ``default`` (or nothing) as the route is the operator's default route."""
        prices = {}
        for speed, typed in self.prices.items():
            try:
                prices[speed] = int(typed)
            except ValueError:
                raise CatalogError(
                    "prices", f"the {speed} price must be a whole number of credits, not {typed!r}"
                ) from None
        route = self.route.strip()
        default_route = route.lower() in ("", DEFAULT_ROUTE)
        providers = None
        if not default_route:
            providers = tuple(p.strip() for p in route.split(",") if p.strip())
        return ModelChange(
            title=self.title,
            prices=prices,
            reports=self.reports,
            sizes=tuple(self.sizes),
            providers=providers,
            clear_providers=default_route and not creating,
            upstream=catalog.parse_upstream(self.upstream.strip() or "{}"),
            queue=(self.queue or None) if creating else self.queue,
        )


@dataclass(frozen=True)
class ModelRow:
    """A model as the table shows it."""

    name: str
    title: str
    active: bool
    prices: list[int]
    sizes: str
    route: str
    queue: str

    @classmethod
    def of(cls, model: CatalogModel) -> ModelRow:
        return cls(
            name=model.name,
            title=model.title,
            active=model.active,
            prices=[model.prices[speed] for speed in RENDERING_SPEEDS],
            sizes=", ".join(model.sizes),
            route=route_text(model.providers),
            queue=model.queue,
        )


@dataclass
class PlanForm:
    name: str = ""
    ratio: str = ""


def _form_context(form: ModelForm, error: ValueError | None) -> dict[str, Any]:
    return {
        "form": form,
        "error": str(error) if error else None,
        "invalid": error.field if isinstance(error, CatalogError) else None,
        "speeds": RENDERING_SPEEDS,
        "sizes": list(SIZES),
        "providers": PROVIDER_NAMES,
        **HELPERS,
    }


async def _models_page(
    request: Request,
    who: SignedIn,
    create: ModelForm | None = None,
    plan: PlanForm | None = None,
    error: ValueError | None = None,
) -> Response:
    """The catalogue page; on a refused create or plan, its message and the form as typed."""
    async with services_of(request).db.sessions() as session:
        models = await catalog.list_models(SessionTx(session))
        price_plans = await plans.list_plans(session)
    return render(
        request, "admin_models.html", who, 400 if error else 200,
        title="Models", models=[ModelRow.of(m) for m in models], plans=price_plans,
        plan_form=plan or PlanForm(), **_form_context(create or ModelForm(), error),
    )  # fmt: skip


async def _model_page(
    request: Request,
    who: SignedIn,
    name: str,
    form: ModelForm | None = None,
    error: ValueError | None = None,
) -> Response:
    """A model's edit page; on a refused change, its message and the form as typed."""
    async with services_of(request).db.sessions() as session:
        try:
            model = await catalog.get_model(SessionTx(session), name)
        except ModelMissing:
            raise PageNotFound() from None
    return render(
        request, "admin_model.html", who, 400 if error else 200,
        title=f"Model {model.name}", model=ModelRow.of(model),
        **_form_context(form or ModelForm.of(model), error),
    )  # fmt: skip


@router.get("/models", response_class=HTMLResponse)
async def models_page(request: Request, who: Operator) -> Response:
    return await _models_page(request, who)


@router.post("/models", response_class=HTMLResponse)
async def create_model(request: Request, who: Operator) -> Response:
    form = ModelForm.posted(await checked_form(request, who))
    services = services_of(request)
    try:
        change = form.change(creating=True)
        async with services.db.transaction() as session:
            model = await catalog.create_model(
                SessionTx(session), form.name, change, services.clock.now()
            )
    except CatalogError as exc:
        return await _models_page(request, who, create=form, error=exc)
    return redirect(request, MODELS, f"Model {model.name} created: clients can use it now.")


@router.get("/models/{name}", response_class=HTMLResponse)
async def model_page(request: Request, who: Operator, name: str) -> Response:
    return await _model_page(request, who, name)


@router.post("/models/{name}", response_class=HTMLResponse)
async def update_model(request: Request, who: Operator, name: str) -> Response:
    form = ModelForm.posted(await checked_form(request, who))
    form.name = name
    services = services_of(request)
    try:
        change = form.change(creating=False)
        async with services.db.transaction() as session:
            model = await catalog.update_model(
                SessionTx(session), name, change, services.clock.now()
            )
    except ModelMissing:
        raise PageNotFound() from None
    except CatalogError as exc:
        return await _model_page(request, who, name, form, exc)
    return redirect(request, MODELS, f"Model {model.name} saved.")


async def _set_active(request: Request, who: SignedIn, name: str, active: bool) -> CatalogModel:
    await checked_form(request, who)
    services = services_of(request)
    try:
        async with services.db.transaction() as session:
            return await catalog.set_active(SessionTx(session), name, active, services.clock.now())
    except ModelMissing:
        raise PageNotFound() from None


@router.post("/models/{name}/deactivate")
async def deactivate_model(request: Request, who: Operator, name: str) -> Response:
    model = await _set_active(request, who, name, False)
    notice = f"Model {model.name} deactivated: creates for it now get 404 model_not_found."
    return redirect(request, MODELS, notice)


@router.post("/models/{name}/activate")
async def activate_model(request: Request, who: Operator, name: str) -> Response:
    model = await _set_active(request, who, name, True)
    return redirect(request, MODELS, f"Model {model.name} activated: clients can use it again.")


@router.post("/plans", response_class=HTMLResponse)
async def save_plan(request: Request, who: Operator) -> Response:
    posted = await checked_form(request, who)
    form = PlanForm(name=text(posted, "name"), ratio=text(posted, "ratio"))
    services = services_of(request)
    try:
        async with services.db.transaction() as session:
            plan = await plans.save_plan(session, form.name, form.ratio, services.clock.now())
            saved = f"Price plan {plan.name} saved: its accounts pay {plan.ratio} × list prices."
    except plans.PlanError as exc:
        return await _models_page(request, who, plan=form, error=exc)
    return redirect(request, f"{MODELS}#plans", saved)
