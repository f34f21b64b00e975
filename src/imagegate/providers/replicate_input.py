"""How a catalogue model's Replicate route turns the reference's input into a model's inputs.

A model's ``upstream.replicate`` (catalog/service.py checks it) holds:

- ``model``: the Replicate model, ``owner/name`` (``{speed}`` in it becomes turbo, balanced or
  quality); absent: the operator's IMAGEGATE_REPLICATE_MODEL;
- ``input``: the prediction's ``input`` object. A string value that is exactly one placeholder
  (``"{prompt}"``, ``"{size}"``, ``"{width}"``, ``"{height}"``, ``"{rendering_speed}"``,
  ``"{output_format}"``) becomes that value of the task (width and height as numbers); other
  values are sent as they are. Absent: Ideogram's inputs (``resolution``, ``rendering_speed``);
- ``values``: per placeholder, a table from our value to the model's, e.g.
  ``{"output_format": {"jpeg": "jpg"}}``.

For example black-forest-labs/flux-schnell:
``{"model": "black-forest-labs/flux-schnell", "input": {"prompt": "{prompt}",
"aspect_ratio": "{size}", "output_format": "{output_format}"},
"values": {"output_format": {"jpeg": "jpg"}}}``.
"""

from __future__ import annotations

import re
from typing import Any

from imagegate.providers.base import GenerationRequest

PLACEHOLDERS = ("prompt", "size", "width", "height", "rendering_speed", "output_format")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")  # the whole value (fullmatch)
# owner/name: the model's latest version (a pinned owner/name:version is served elsewhere).
_MODEL = re.compile(r"[A-Za-z0-9_.{}-]+/[A-Za-z0-9_.{}-]+")  # the whole name (fullmatch)
OPTIONS = ("model", "input", "values")


def check_options(options: Any) -> dict[str, Any]:
    """``options`` if they are a valid Replicate route, else ValueError saying what is wrong."""
    if not isinstance(options, dict):
        raise ValueError("must be an object with model, input and values")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
    model = options.get("model")
    if model is not None and (not isinstance(model, str) or not _MODEL.fullmatch(model)):
        raise ValueError("model must be a Replicate model name, owner/name (no :version)")
    model_input = options.get("input")
    if model_input is not None:
        if not isinstance(model_input, dict) or not model_input:
            raise ValueError("input must be a non-empty object")
        for name, value in model_input.items():
            placeholder = _placeholder(value)
            if isinstance(value, str) and "{" in value and placeholder is None:
                raise ValueError(f"input.{name}: {value!r} is not one of the placeholders "
                                 f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}")  # fmt: skip
    values = options.get("values", {})
    if not isinstance(values, dict) or any(
        name not in PLACEHOLDERS or not isinstance(table, dict) for name, table in values.items()
    ):
        raise ValueError(f"values must map placeholders ({', '.join(PLACEHOLDERS)}) to tables")
    return options


def _placeholder(value: Any) -> str | None:
    found = _PLACEHOLDER.fullmatch(value) if isinstance(value, str) else None
    return found.group(1) if found and found.group(1) in PLACEHOLDERS else None


def mapped_input(template: dict[str, Any], values: dict[str, Any], request: GenerationRequest)\
        -> dict[str, Any]:  # fmt: skip
    """The prediction's input for ``request``, from a checked ``template``."""
    mine: dict[str, Any] = {
        "prompt": request.prompt, "size": request.size, "width": request.width,
        "height": request.height, "rendering_speed": request.rendering_speed,
        "output_format": request.output_format,
    }  # fmt: skip
    result: dict[str, Any] = {}
    for name, value in template.items():
        placeholder = _placeholder(value)
        if placeholder is None:
            result[name] = value
            continue
        ours = mine[placeholder]
        result[name] = values.get(placeholder, {}).get(str(ours), ours)
    return result
