"""What every provider implements: a generation request in, image bytes or a typed failure out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

PROVIDER_NAMES = ("simulator", "ideogram", "replicate")  # what a model's route may name
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
EXTENSIONS = {"png": "png", "jpeg": "jpg"}

# What a client reads in a failed task's error.message (the reference's own wording).
SAFETY_REJECTED = "The input contains sensitive or prohibited content"
UNAVAILABLE = "The provider is temporarily unavailable"
UNSUPPORTED = "The request parameters are not supported by the provider"
BAD_IMAGE = "The provider returned an image that could not be used"


@dataclass(frozen=True)
class GenerationRequest:
    task_id: str
    prompt: str
    size: str  # a catalogue size preset, e.g. "16:9"
    width: int
    height: int
    rendering_speed: str  # TURBO | BALANCED | QUALITY
    output_format: str  # jpeg | png
    # How the catalogue model asks this provider for it (its upstream.<provider> options; see
    # providers/replicate_input.py); the router fills it in per provider.
    upstream: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    output_format: str  # jpeg | png

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.output_format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.output_format]


class ProviderError(Exception):
    """A generation that failed; becomes a failed task with this code and message.

    ``retryable``: the same provider may succeed if asked again (timeouts, 429, 5xx).
    ``failover``: another provider may succeed (everything but a content rejection).
    ``unhealthy``: the failure says the provider is down or misconfigured; it counts towards
    opening the provider's circuit. ``detail`` is for the operator's log only: never shown to
    clients, never holding credentials.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "upstream_error",
        retryable: bool = False,
        failover: bool | None = None,
        unhealthy: bool | None = None,
        retry_after: float | None = None,
        detail: str = "",
    ):
        self.code = code
        self.message = message
        self.retryable = retryable
        self.failover = retryable if failover is None else failover
        self.unhealthy = retryable if unhealthy is None else unhealthy
        self.retry_after = retry_after
        self.detail = detail or message
        self.provider = ""  # which provider failed last (set by the router)
        super().__init__(message)


def rejected(detail: str) -> ProviderError:
    """The upstream refused the content: final, another provider would refuse it too."""
    return ProviderError(SAFETY_REJECTED, detail=detail)


def unavailable(detail: str, retry_after: float | None = None) -> ProviderError:
    """A transient failure: retry, then fail over."""
    return ProviderError(UNAVAILABLE, retryable=True, retry_after=retry_after, detail=detail)


def misconfigured(detail: str) -> ProviderError:
    """Credentials or the operator's upstream account are wrong: fail over, do not retry."""
    return ProviderError(UNAVAILABLE, failover=True, unhealthy=True, detail=detail)


def unsupported(detail: str) -> ProviderError:
    """The upstream refused our parameters: another provider may take them."""
    return ProviderError(UNSUPPORTED, failover=True, detail=detail)


def bad_image(detail: str) -> ProviderError:
    """The upstream's image is unusable (too large, not an image): another provider may do."""
    return ProviderError(BAD_IMAGE, failover=True, detail=detail)


class Provider(Protocol):
    name: str

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """Images for ``request``; raises ProviderError when the upstream cannot make them."""
        ...
