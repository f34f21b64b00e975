from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image

from imagegate.catalog import SIZES
from imagegate.providers.base import GenerationRequest, ProviderError
from imagegate.providers.simulator import (
    SIMULATE_UPSTREAM_ERROR,
    SimulatorProvider,
    render_image,
)
from ocr import normalise, ocr

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG"}


def request(
    prompt: str, *, size: str = "1:1", output_format: str = "png", speed: str = "TURBO"
) -> GenerationRequest:
    width, height = SIZES[size]
    return GenerationRequest(
        task_id="task-1",
        prompt=prompt,
        size=size,
        width=width,
        height=height,
        rendering_speed=speed,
        output_format=output_format,
    )


@pytest.mark.parametrize("output_format", ["png", "jpeg"])
@pytest.mark.parametrize("size", list(SIZES))
def test_every_preset_renders_at_its_exact_size_and_format(size: str, output_format: str) -> None:
    width, height = SIZES[size]

    data = render_image('A poster that says "Hello"', width, height, output_format)

    with Image.open(io.BytesIO(data)) as image:
        assert image.format == PIL_FORMATS[output_format]
        assert image.size == (width, height)
        assert image.mode == "RGB"


def test_rendering_is_deterministic_and_seeded_by_the_prompt() -> None:
    first = render_image('A logo for "Daily Brew"', 1024, 1024, "png")

    assert render_image('A logo for "Daily Brew"', 1024, 1024, "png") == first
    assert render_image('A logo for "Daily Brew" ', 1024, 1024, "png") != first
    assert render_image("A logo for a coffee shop", 1024, 1024, "png") != first


@pytest.mark.parametrize(
    ("prompt", "size", "output_format", "expected"),
    [
        ('A coffee shop logo that says "Daily Brew"', "1:1", "png", "Daily Brew"),
        ('A beach poster titled "SUMMER NIGHTS" at dusk', "16:9", "jpeg", "SUMMER NIGHTS"),
        ('A shop banner: "Grand Opening Saturday"', "9:16", "png", "Grand Opening Saturday"),
        (
            "A menu board with “Fresh Bread” and “Hot Coffee”",
            "4:3",
            "jpeg",
            "Fresh Bread Hot Coffee",
        ),
    ],
)
def test_quoted_text_is_legible(
    prompt: str, size: str, output_format: str, expected: str, tmp_path: Path
) -> None:
    width, height = SIZES[size]

    data = render_image(prompt, width, height, output_format)

    assert normalise(expected) in ocr(data, tmp_path)


def test_a_prompt_without_quotes_gets_a_caption_of_its_first_words(tmp_path: Path) -> None:
    data = render_image("a misty forest at dawn with deer and light rays", 1152, 864, "png")

    assert "a misty forest at dawn with" in ocr(data, tmp_path)


async def test_provider_returns_one_image_in_the_requested_format() -> None:
    provider = SimulatorProvider(lambda speed: 0.0)

    images = await provider.generate(request('"SALE"', size="3:4", output_format="jpeg"))

    assert provider.name == "simulator"
    assert len(images) == 1
    assert images[0].output_format == "jpeg"
    assert images[0].content_type == "image/jpeg"
    with Image.open(io.BytesIO(images[0].data)) as image:
        assert (image.format, image.size) == ("JPEG", SIZES["3:4"])


async def test_provider_fails_when_the_prompt_asks_for_an_upstream_error() -> None:
    provider = SimulatorProvider(lambda speed: 0.0)

    with pytest.raises(ProviderError) as failure:
        await provider.generate(request(f'"Daily Brew" {SIMULATE_UPSTREAM_ERROR}'))

    assert failure.value.code == "upstream_error"
    assert failure.value.message == "Image generation failed"
    assert failure.value.retryable is False


async def test_provider_waits_the_delay_for_the_requests_rendering_speed() -> None:
    calls: list[str] = []

    def delay_for(speed: str) -> float:
        calls.append(speed)
        return 0.05

    provider = SimulatorProvider(delay_for)
    started = time.monotonic()

    await provider.generate(request('"Daily Brew"', size="16:9", speed="QUALITY"))

    assert calls == ["QUALITY"]
    assert time.monotonic() - started >= 0.05
