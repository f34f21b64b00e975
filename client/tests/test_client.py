"""Client, the blocking SDK, against a real imagegate server: every method."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from harness import Account
from imagegate.config import Settings
from imagegate_client import (
    PRICES,
    APIError,
    Client,
    ImagegateError,
    Task,
    TaskFailedError,
    WaitTimeoutError,
)
from sdk_support import HeldProvider, Live, live_server

FAIL = "a poster [simulate:upstream_error]"


def test_generate_waits_for_the_image_and_download_saves_it(client: Client, tmp_path: Path) -> None:
    seen: list[str] = []
    task = client.generate(
        'A retro concert poster with bold headline text "SUMMER NIGHTS"',
        size="16:9", rendering_speed="TURBO", on_poll=lambda t: seen.append(t.status),
    )  # fmt: skip
    assert task.status == "completed"
    assert task.finished
    assert task.completed_at is not None
    assert task.completed_at >= task.created_at
    assert task.output is not None
    assert task.output.metadata.model == "ideogram-ai/ideogram-v4"
    assert seen[-1] == "completed"
    out = tmp_path / "out"
    out.mkdir()
    path = client.download(task, out / "poster.jpg")
    assert path == out / "poster.jpg"
    with Image.open(io.BytesIO(path.read_bytes())) as image:
        assert (image.format, image.size) == ("JPEG", (1280, 720))
    assert client.credits().credits == 1000 - PRICES["TURBO"]
    assert [p.name for p in out.iterdir()] == ["poster.jpg"]  # no partial file left


def test_create_get_wait_and_download_into_a_directory(client: Client, tmp_path: Path) -> None:
    task_id = client.create("a cat", output_format="png", rendering_speed="QUALITY")
    first = client.get(task_id)
    assert first.id == task_id
    assert first.model == "ideogram-v4"
    assert first.status in ("pending", "processing", "completed")
    task = client.wait(task_id, timeout=30)
    assert task.status == "completed"
    assert client.get(task_id) == task
    path = client.download(task, tmp_path)
    assert path.parent == tmp_path
    assert path.suffix == ".png"
    assert path.name == task.urls[0].rsplit("/", 1)[1]
    assert path.read_bytes().startswith(b"\x89PNG")
    assert client.credits().credits == 1000 - PRICES["QUALITY"]


def test_a_failed_task_raises_from_generate_and_is_returned_by_wait(client: Client) -> None:
    with pytest.raises(TaskFailedError) as failed:
        client.generate(FAIL)
    assert (failed.value.code, failed.value.message) == (
        "upstream_error",
        "Image generation failed",
    )
    assert failed.value.task.status == "failed"
    assert any(failed.value.task.id in note for note in failed.value.__notes__)
    task = client.wait(client.create(FAIL))
    assert task.status == "failed"
    assert task.error is not None
    assert task.output is None
    with pytest.raises(TaskFailedError):
        client.download(task)
    assert client.credits().credits == 1000  # both refunded


def test_download_refuses_a_task_that_has_not_completed(client: Client) -> None:
    pending = Task(id="t", status="pending", model="ideogram-v4", created_at=0)
    with pytest.raises(ValueError, match="pending"):
        client.download(pending)


@pytest.fixture
def held(settings: Settings) -> Iterator[tuple[Live, HeldProvider]]:
    provider = HeldProvider()
    with live_server(settings, {"ideogram-v4": provider}) as running:
        try:
            yield running, provider
        finally:
            provider.release()


def test_wait_gives_up_at_its_timeout_and_resumes_without_losing_the_task(
    held: tuple[Live, HeldProvider],
) -> None:
    live, provider = held
    account = live.account()
    with Client(base_url=live.base_url, api_key=account.key) as client:
        with pytest.raises(WaitTimeoutError) as timed_out:
            client.generate("a held poster", timeout=0.5)
        error = timed_out.value
        assert error.task is not None
        assert error.task.status == "processing"
        assert error.task.id == error.task_id
        assert error.timeout == 0.5
        assert f"wait({error.task_id!r})" in str(error)
        provider.release()
        assert client.wait(error.task_id, timeout=30).status == "completed"


def test_configuration_from_the_environment(
    live: Live, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGATE_BASE_URL", live.base_url + "/")
    monkeypatch.setenv("IMAGEGATE_API_KEY", account.key)
    with Client() as client:
        assert client.credits().credits == 1000
        assert client.webhook_secret().startswith("whsec_")
    monkeypatch.delenv("IMAGEGATE_API_KEY")
    with pytest.raises(ImagegateError, match="IMAGEGATE_API_KEY"):
        Client()


def test_a_task_id_cannot_escape_its_path(client: Client) -> None:
    with pytest.raises(ValueError, match="empty"):
        client.get("")
    with pytest.raises(APIError) as error:  # quoted: never GET /v1/credits
        client.get("../credits")
    assert error.value.status_code in (400, 404)
