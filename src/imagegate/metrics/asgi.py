"""Counts and times every HTTP request by its route's template (never the raw path: task ids
would make a series per task), method and status."""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

from imagegate.metrics import families as m

UNMATCHED = "unmatched"  # no route (404s for unknown paths, static files)
# Any other method is labelled "other": a label must never take values a client makes up.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """What http_edge.py records of each request once it is answered."""

    def __init__(self) -> None:
        # Label children by (route, method, status): .labels() takes a lock and builds a key;
        # the few hundred combinations a server sees are looked up once.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", UNMATCHED)
        method = scope["method"] if scope["method"] in METHODS else "other"
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = m.HTTP_REQUESTS.labels(route, method, str(status))
            self._counters[(route, method, status)] = counter
        counter.inc()
        timer = self._timers.get((route, method))
        if timer is None:
            timer = self._timers[(route, method)] = m.HTTP_SECONDS.labels(route, method)
        timer.observe(seconds)
