"""What every provider implements: a generation request in, image bytes or a typed failure out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
EXTENSIONS = {"png": "png", "jpeg": "jpg"}


@dataclass(frozen=True)
class GenerationRequest:
    task_id: str
    prompt: str
    size: str  # a catalogue size preset, e.g. "16:9"
    width: int
    height: int
    rendering_speed: str  # TURBO | BALANCED | QUALITY
    output_format: str  # jpeg | png


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
    """A generation that failed; becomes a failed task with this code and message."""

    def __init__(self, message: str, *, code: str = "upstream_error", retryable: bool = False):
        self.code = code
        self.message = message
        self.retryable = retryable
        super().__init__(message)


class Provider(Protocol):
    name: str

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """Images for ``request``; raises ProviderError when the upstream cannot make them."""
        ...
