"""The reference's success envelope: {"code": 200, "msg": "success", "data": ...}."""

from __future__ import annotations

from typing import Any


def success(data: dict[str, Any]) -> dict[str, Any]:
    return {"code": 200, "msg": "success", "data": data}
