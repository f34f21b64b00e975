"""Which provider serves which catalogue model."""

from __future__ import annotations

from imagegate.providers.base import Provider


class ProviderRegistry:
    def __init__(self, routes: dict[str, Provider]) -> None:
        self._routes = dict(routes)

    def for_model(self, model: str) -> Provider:
        """The provider for ``model``; LookupError when none is configured."""
        try:
            return self._routes[model]
        except KeyError:
            raise LookupError(f"no provider for model {model!r}") from None
