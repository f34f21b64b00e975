"""imagegate_client: the Python SDK for imagegate and any server with the Ideogram V4 task API.

    from imagegate_client import Client

    with Client() as client:  # IMAGEGATE_BASE_URL, IMAGEGATE_API_KEY
        task = client.generate('A poster with the text "SUMMER NIGHTS"', size="16:9")
        client.download(task, "poster.jpg")

The exception tree is drawn in ``imagegate_client._exceptions``; every error is an ImagegateError.

Importing the package is cheap (the CLI starts fast): each name loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from imagegate_client._version import __version__

if TYPE_CHECKING:
    from imagegate_client._async_client import AsyncClient
    from imagegate_client._base import DEFAULT_TIMEOUT, DEFAULT_WAIT_TIMEOUT
    from imagegate_client._client import Client
    from imagegate_client._exceptions import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        AuthenticationError,
        ImagegateError,
        InsufficientCreditsError,
        InternalServerError,
        InvalidRequestError,
        IpNotAllowedError,
        ModelNotFoundError,
        NotFoundError,
        NotReadyError,
        RateLimitError,
        SpendLimitError,
        TaskFailedError,
        TaskNotFoundError,
        UpstreamError,
        WaitTimeoutError,
        WebhookVerificationError,
    )
    from imagegate_client._models import (
        PRICES,
        CreateOptions,
        Credits,
        Model,
        ModelPrices,
        ModelSize,
        OutputFormat,
        RenderingSpeed,
        Size,
        Task,
        TaskError,
        TaskOutput,
        TaskStatus,
        Usage,
        UsageCounts,
        UsageGroup,
        UsageRow,
    )
    from imagegate_client._webhooks import verify_callback

_LAZY: dict[str, str] = {
    "AsyncClient": "imagegate_client._async_client",
    "DEFAULT_TIMEOUT": "imagegate_client._base",
    "DEFAULT_WAIT_TIMEOUT": "imagegate_client._base",
    "Client": "imagegate_client._client",
    "APIConnectionError": "imagegate_client._exceptions",
    "APIError": "imagegate_client._exceptions",
    "APITimeoutError": "imagegate_client._exceptions",
    "AuthenticationError": "imagegate_client._exceptions",
    "ImagegateError": "imagegate_client._exceptions",
    "InsufficientCreditsError": "imagegate_client._exceptions",
    "InternalServerError": "imagegate_client._exceptions",
    "InvalidRequestError": "imagegate_client._exceptions",
    "IpNotAllowedError": "imagegate_client._exceptions",
    "ModelNotFoundError": "imagegate_client._exceptions",
    "NotFoundError": "imagegate_client._exceptions",
    "NotReadyError": "imagegate_client._exceptions",
    "RateLimitError": "imagegate_client._exceptions",
    "SpendLimitError": "imagegate_client._exceptions",
    "TaskFailedError": "imagegate_client._exceptions",
    "TaskNotFoundError": "imagegate_client._exceptions",
    "UpstreamError": "imagegate_client._exceptions",
    "WaitTimeoutError": "imagegate_client._exceptions",
    "WebhookVerificationError": "imagegate_client._exceptions",
    "PRICES": "imagegate_client._models",
    "CreateOptions": "imagegate_client._models",
    "Credits": "imagegate_client._models",
    "Model": "imagegate_client._models",
    "ModelPrices": "imagegate_client._models",
    "ModelSize": "imagegate_client._models",
    "OutputFormat": "imagegate_client._models",
    "RenderingSpeed": "imagegate_client._models",
    "Size": "imagegate_client._models",
    "Task": "imagegate_client._models",
    "TaskError": "imagegate_client._models",
    "TaskOutput": "imagegate_client._models",
    "TaskStatus": "imagegate_client._models",
    "Usage": "imagegate_client._models",
    "UsageCounts": "imagegate_client._models",
    "UsageGroup": "imagegate_client._models",
    "UsageRow": "imagegate_client._models",
    "verify_callback": "imagegate_client._webhooks",
}

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "PRICES",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "CreateOptions",
    "Credits",
    "ImagegateError",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidRequestError",
    "IpNotAllowedError",
    "Model",
    "ModelNotFoundError",
    "ModelPrices",
    "ModelSize",
    "NotFoundError",
    "NotReadyError",
    "OutputFormat",
    "RateLimitError",
    "RenderingSpeed",
    "Size",
    "SpendLimitError",
    "Task",
    "TaskError",
    "TaskFailedError",
    "TaskNotFoundError",
    "TaskOutput",
    "TaskStatus",
    "UpstreamError",
    "Usage",
    "UsageCounts",
    "UsageGroup",
    "UsageRow",
    "WaitTimeoutError",
    "WebhookVerificationError",
    "__version__",
    "verify_callback",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
