"""Price plans: an account on a plan pays its list prices multiplied by the plan's ratio.

The rule, in one place (``planned_price``): the list price times the ratio, **rounded up** to a
whole credit, so a plan never charges less than its ratio says (0.8 of 28 is 22.4: 23 credits).
A ratio of 1 is the list price; 0 makes the account's tasks free. The charge, the refund (it
gives back what the charge took) and the spend limits (they count what tasks were charged) all
use that amount, and a task keeps it whatever its plan or the model's price become.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.catalog import NAME_PATTERN
from imagegate.db.models import Account, PricePlan

MAX_RATIO = Decimal(100)
NO_PLAN = "none"  # what operators type for "list prices" (CLI, console)
_NAME = re.compile(NAME_PATTERN)  # like a model's name


class PlanError(ValueError):
    """A refused plan change, with a message for people."""


class PlanNotFound(LookupError):
    pass


def parse_ratio(text: str) -> str:
    """The ratio as stored (a plain decimal: 0.8), or PlanError: 0 to 100, at most 4 decimals."""
    try:
        ratio = Decimal(text.strip())
    except InvalidOperation:
        raise PlanError(f"ratio must be a decimal number such as 0.8, not {text!r}") from None
    if not ratio.is_finite() or ratio < 0 or ratio > MAX_RATIO:
        raise PlanError(f"ratio must be between 0 and {MAX_RATIO}")
    if ratio != ratio.quantize(Decimal("0.0001")):
        raise PlanError("ratio may have at most 4 decimal places")
    return format((ratio + 0).normalize(), "f")  # + 0: -0 is 0


def planned_price(price: int, ratio: str | None) -> int:
    """What an account on a plan of ``ratio`` (None: no plan) pays for a list ``price``."""
    if ratio is None:
        return price
    return int((Decimal(price) * Decimal(ratio)).to_integral_value(ROUND_CEILING))


def check_plan_name(name: str) -> str:
    if name == NO_PLAN:
        raise PlanError(f"'{NO_PLAN}' means no plan; give the plan another name")
    if not _NAME.fullmatch(name):
        raise PlanError(
            "a plan's name is 1-64 characters: lower-case letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


async def list_plans(session: AsyncSession) -> list[PricePlan]:
    return list(await session.scalars(select(PricePlan).order_by(PricePlan.name)))


async def get_plan(session: AsyncSession, name: str) -> PricePlan:
    plan = await session.get(PricePlan, name)
    if plan is None:
        raise PlanNotFound(f"no price plan {name!r}")
    return plan


async def save_plan(session: AsyncSession, name: str, ratio: str, now: float) -> PricePlan:
    """Create the plan ``name``, or change its ratio: accounts on it pay the new prices from
    their next create on."""
    plan = await session.get(PricePlan, check_plan_name(name))
    if plan is None:
        plan = PricePlan(name=name, ratio=parse_ratio(ratio), created_at=now, updated_at=now)
        session.add(plan)
    else:
        plan.ratio, plan.updated_at = parse_ratio(ratio), now
    await session.flush()
    return plan


async def set_account_plan(session: AsyncSession, account_id: str, plan: str | None) -> Account:
    """Put the account on ``plan`` (None: list prices)."""
    account = await session.get(Account, account_id)
    if account is None:
        raise LookupError(f"no account {account_id}")
    if plan is not None:
        await get_plan(session, plan)
    account.price_plan = plan
    await session.flush()
    return account
