"""A key's access policy as operators write it (CLI flags) and as it is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imagegate.catalog import MODELS
from imagegate.db.models import ApiKey
from imagegate.keys.network import parse_networks

CLEAR = ("none", "any", "never")


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

    def apply(self, key: ApiKey) -> None:
        """Validate every given field (ValueError names the bad one), then set them on ``key``."""
        values: dict[str, Any] = {}
        if self.allow_ips is not None:
            values["allowed_ips"] = _list(self.allow_ips, _cidrs)
        for name in ("rate_limit", "hourly_limit", "daily_limit", "total_limit"):
            text = getattr(self, name)
            if text is not None:
                values[name] = _positive(name, text)
        if self.expires is not None:
            values["expires_at"] = _expiry(self.expires)
        if self.models is not None:
            values["models"] = _list(self.models, _known_models)
        for name, value in values.items():
            setattr(key, name, value)


def _list(items: list[str], check: Any) -> list[str] | None:
    if [item.lower() for item in items] == ["any"]:
        return None
    return list(check(items))


def _cidrs(items: list[str]) -> list[str]:
    return [str(network) for network in parse_networks(items)]


def _known_models(items: list[str]) -> list[str]:
    unknown = [item for item in items if item not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s): {', '.join(unknown)} (known: {', '.join(MODELS)})")
    return items


def _positive(name: str, text: str) -> int | None:
    if text.lower() in CLEAR:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name.replace('_', '-')} must be a positive whole number or 'none'")
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
