"""A key's access policy as operators write it (CLI flags, console forms) and as it is stored."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from imagegate.db.models import ApiKey
from imagegate.keys.network import parse_networks

CLEAR = ("none", "any", "never")
LIMITS = ("rate_limit", "hourly_limit", "daily_limit", "total_limit")
# The largest value each column holds: rate_limit is a 32-bit integer, spend limits 64-bit.
MAXIMUM = {name: 2**63 - 1 for name in LIMITS} | {"rate_limit": 2**31 - 1}


class PolicyError(ValueError):
    """A bad policy value; ``field`` is the ApiKey attribute it was meant for."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PolicyChange:
    """Only the fields given change; each is parsed from the operator's text."""

    allow_ips: list[str] | None = None  # ["any"] clears
    rate_limit: str | None = None  # a number, or "none"
    hourly_limit: str | None = None
    daily_limit: str | None = None
    total_limit: str | None = None
    expires: str | None = None  # ISO 8601 (UTC when no offset), or "never"
    models: list[str] | None = None  # ["any"] clears

    @classmethod
    def whole(
        cls,
        allow_ips: str = "",
        rate_limit: str = "",
        hourly_limit: str = "",
        daily_limit: str = "",
        total_limit: str = "",
        expires: str = "",
        models: list[str] | None = None,
    ) -> PolicyChange:
        """Every field at once, as a console form sends them: an empty field (no model ticked)
        removes that limit; ``allow_ips`` holds IPs/CIDRs separated by commas or line breaks."""
        ips = [item for item in re.split(r"[\s,]+", allow_ips) if item]

        def limit(text: str) -> str:
            return text.strip() or "none"

        return cls(
            allow_ips=ips or ["any"],
            rate_limit=limit(rate_limit),
            hourly_limit=limit(hourly_limit),
            daily_limit=limit(daily_limit),
            total_limit=limit(total_limit),
            expires=expires.strip() or "never",
            models=list(models or ()) or ["any"],
        )

    def apply(self, key: ApiKey, known_models: Collection[str]) -> None:
        """Validate every given field (PolicyError, a ValueError, names the bad one; a model
        must be one of ``known_models``), then set them on ``key``: a bad field leaves the key
        as it was."""
        values: dict[str, Any] = {}
        if self.allow_ips is not None:
            values["allowed_ips"] = _field("allowed_ips", _list, self.allow_ips, _cidrs)
        for name in LIMITS:
            text = getattr(self, name)
            if text is not None:
                values[name] = _field(name, _positive, name, text)
        if self.expires is not None:
            values["expires_at"] = _field("expires_at", _expiry, self.expires)
        if self.models is not None:
            values["models"] = _field(
                "models", _list, self.models, partial(_known_models, known_models)
            )
        for name, value in values.items():
            setattr(key, name, value)


def _field(field: str, parse: Any, *args: Any) -> Any:
    try:
        return parse(*args)
    except ValueError as exc:
        raise PolicyError(field, str(exc)) from None


def _list(items: list[str], check: Any) -> list[str] | None:
    if [item.lower() for item in items] == ["any"]:
        return None
    return list(check(items))


def _cidrs(items: list[str]) -> list[str]:
    return [str(network) for network in parse_networks(items)]


def _known_models(known: Collection[str], items: list[str]) -> list[str]:
    unknown = [item for item in items if item not in known]
    if unknown:
        raise ValueError(f"unknown model(s): {', '.join(unknown)} (known: {', '.join(known)})")
    return items


def _positive(name: str, text: str) -> int | None:
    if text.lower() in CLEAR:
        return None
    flag = name.replace("_", "-")
    if not (text.isascii() and text.isdigit()) or not text.strip("0"):
        raise ValueError(f"{flag} must be a positive whole number or 'none'")
    if len(text.lstrip("0")) > 19 or int(text) > MAXIMUM[name]:
        raise ValueError(f"{flag} must be at most {MAXIMUM[name]}")
    return int(text)


def _expiry(text: str) -> float | None:
    if text.lower() in CLEAR:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def policy_json(key: ApiKey) -> dict[str, Any]:
    expires = key.expires_at
    return {
        "allowed_ips": key.allowed_ips or [],
        "rate_limit": key.rate_limit,
        "hourly_limit": key.hourly_limit,
        "daily_limit": key.daily_limit,
        "total_limit": key.total_limit,
        "expires_at": None
        if expires is None
        else datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "models": key.models,
    }


def key_json(key: ApiKey) -> dict[str, Any]:
    """A key as the admin CLI prints it: never the key itself, only its prefix."""
    return {
        "id": key.id,
        "account_id": key.account_id,
        "name": key.name,
        "prefix": key.prefix,
        "status": key.status,
        "created_at": int(key.created_at),
        **policy_json(key),
    }
