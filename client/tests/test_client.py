"""Client, the blocking SDK, against a real imagegate server: every method."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image

from harness import Account
from imagegate.billing.plans import save_plan, set_account_plan
from imagegate.catalog.service import ModelChange, create_model
from imagegate.config import Settings
from imagegate.db.sql import SessionTx
from imagegate.keys.policy import PolicyChange
from imagegate_client import (
    PRICES,
    APIError,
    AuthenticationError,
    Client,
    ImagegateError,
    InvalidRequestError,
    Model,
    ModelPrices,
    ModelSize,
    Task,
    TaskFailedError,
    TaskNotFoundError,
    UsageCounts,
    WaitTimeoutError,
)
from sdk_support import FORWARD, LOST, HeldProvider, Live, WireServer, live_server

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


# API round 2: idempotent creates, waiting on the server, live status, cancel, list, usage.


def test_a_create_whose_answer_was_lost_is_retried_and_charged_once(
    live: Live, account: Account
) -> None:
    # The proxy passes the first create on to imagegate, which makes the task, and loses the
    # answer: the SDK sends it again with the same Idempotency-Key and gets the same task.
    with WireServer([LOST, FORWARD], upstream=live.base_url) as proxy:
        with Client(base_url=proxy.base_url, api_key=account.key) as client:
            task_id = client.create("a cat", rendering_speed="TURBO")
            assert client.wait(task_id).status == "completed"
            assert [task.id for task in client.tasks()] == [task_id]
            assert client.credits().credits == 1000 - PRICES["TURBO"]
    first, again = proxy.seen[:2]
    assert (first.method, again.method) == ("POST", "POST")
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"]
    assert again.answered.get("idempotent-replayed") == "true"


def test_the_same_idempotency_key_makes_one_task(client: Client) -> None:
    first = client.create("a cat", rendering_speed="TURBO", idempotency_key="order-42")
    assert client.create("a cat", rendering_speed="TURBO", idempotency_key="order-42") == first
    assert client.generate("a cat", rendering_speed="TURBO", idempotency_key="order-42").id == first
    with pytest.raises(InvalidRequestError):  # the same key for another request
        client.create("a dog", rendering_speed="TURBO", idempotency_key="order-42")
    assert client.create("a cat", rendering_speed="TURBO") != first  # a key of its own
    assert client.credits().credits == 1000 - 2 * PRICES["TURBO"]


def test_generate_is_answered_by_the_create_it_waits_on(live: Live, account: Account) -> None:
    with WireServer([FORWARD], upstream=live.base_url) as proxy:
        with Client(base_url=proxy.base_url, api_key=account.key) as client:
            task = client.generate("a cat", timeout=30)
    assert task.status == "completed"
    [create] = proxy.seen  # no poll needed
    assert create.headers["prefer"] in ("wait=29", "wait=30")
    assert create.answered["preference-applied"] == create.headers["prefer"]


def test_wait_is_one_long_poll_answered_when_the_task_ends(
    held: tuple[Live, HeldProvider],
) -> None:
    live, provider = held
    account = live.account()
    with WireServer([FORWARD], upstream=live.base_url) as proxy:
        with Client(base_url=proxy.base_url, api_key=account.key) as client:
            task_id = client.create("a held poster")
            release = threading.Timer(0.5, provider.release)
            release.start()
            try:
                task = client.wait(task_id, timeout=30)
            finally:
                release.cancel()
    assert task.status == "completed"
    [poll] = [seen for seen in proxy.seen if seen.method == "GET"]
    assert poll.query["wait"] in ("29", "30")
    assert poll.done - poll.at >= 0.4  # held by the server until the task completed


def test_events_follow_a_task_until_it_ends(held: tuple[Live, HeldProvider]) -> None:
    live, provider = held
    with Client(base_url=live.base_url, api_key=live.account().key) as client:
        task_id = client.create("a held poster")
        events = client.events(task_id, timeout=30)
        first = next(events)
        assert first.id == task_id
        assert first.status in ("pending", "processing")
        provider.release()
        rest = list(events)
        states = [first, *rest]
        assert states[-1].status == "completed"
        assert states[-1] == client.get(task_id)
        assert all(a != b for a, b in zip(states, states[1:], strict=False))
        assert [task.status for task in client.events(task_id)] == ["completed"]  # at once
        with pytest.raises(TaskNotFoundError):
            next(client.events("no-such-task"))


def test_cancel_refunds_a_running_task_and_refuses_a_final_one(
    held: tuple[Live, HeldProvider],
) -> None:
    live, _provider = held
    account = live.account()
    with Client(base_url=live.base_url, api_key=account.key) as client:
        task_id = client.create("a held poster", rendering_speed="QUALITY")
        assert client.credits().credits == 1000 - PRICES["QUALITY"]
        task = client.cancel(task_id)
        assert (task.id, task.status) == (task_id, "failed")
        assert task.error is not None
        assert task.error.code == "cancelled"
        assert task.output is None
        assert client.get(task_id) == task
        assert client.wait(task_id) == task
        assert client.credits().credits == 1000
        with pytest.raises(InvalidRequestError, match="already failed"):
            client.cancel(task_id)
        with pytest.raises(TaskNotFoundError):
            client.cancel("no-such-task")
    with Client(base_url=live.base_url, api_key=live.account().key) as stranger:
        with pytest.raises(TaskNotFoundError):
            stranger.cancel(task_id)


def test_tasks_lists_newest_first_across_pages_and_filters(client: Client) -> None:
    created = [client.create(f"poster {n}", rendering_speed="TURBO") for n in range(4)]
    created.append(client.create(FAIL, rendering_speed="TURBO"))
    for task_id in created:
        client.wait(task_id)
    listed = list(client.tasks(page_size=2))
    assert [task.id for task in listed] == created[::-1]
    assert listed[1] == client.get(created[3])
    assert [task.id for task in client.tasks(status="failed")] == [created[-1]]
    assert list(client.tasks(status="pending")) == []
    oldest = listed[-1].created_at
    assert [task.id for task in client.tasks(created_before=oldest)] == []
    assert len(list(client.tasks(created_after=oldest - 1, page_size=100))) == 5


def test_the_last_page_of_tasks_says_next_cursor_null(live: Live, account: Account) -> None:
    # The wire contract: "next_cursor": "..." or null (the SDK takes an absent one as null).
    response = httpx.get(f"{live.base_url}/v1/tasks", headers=account.headers, timeout=30)
    assert response.status_code == 200
    assert response.json()["data"] == {"tasks": [], "next_cursor": None}


def test_usage_counts_tasks_and_credits_by_day_speed_and_key(
    client: Client, account: Account
) -> None:
    client.generate("a cat", rendering_speed="TURBO")
    with pytest.raises(TaskFailedError):
        client.generate(FAIL, rendering_speed="BALANCED")
    usage = client.usage()
    assert usage.group_by == "day"
    assert usage.from_ == usage.to - timedelta(days=29)
    expected = UsageCounts(
        tasks_created=2, tasks_completed=1, tasks_failed=1,
        credits_charged=PRICES["TURBO"] + PRICES["BALANCED"],
        credits_refunded=PRICES["BALANCED"], credits_net=PRICES["TURBO"],
    )  # fmt: skip
    [today] = usage.rows
    assert today.group == usage.to.isoformat()
    assert UsageCounts.model_validate(today.model_dump()) == expected
    assert usage.total == expected
    by_speed = client.usage(from_=usage.to, to=usage.to, group_by="speed")
    assert {row.group: row.credits_net for row in by_speed.rows} == {
        "BALANCED": 0,
        "TURBO": PRICES["TURBO"],
    }
    by_key = client.usage(group_by="key")
    assert [row.group for row in by_key.rows] == [account.key_id]
    yesterday = usage.to - timedelta(days=1)
    empty = client.usage(from_=yesterday, to=yesterday.isoformat())
    assert (empty.rows, empty.total.tasks_created) == ([], 0)
    with pytest.raises(InvalidRequestError):
        client.usage(from_=usage.to, to=yesterday)  # from after to


def test_models_lists_what_the_key_may_use_at_the_accounts_prices(
    live: Live, client: Client, account: Account
) -> None:
    [model] = client.models()
    assert isinstance(model, Model)
    assert (model.name, model.title) == ("ideogram-v4", "Ideogram V4")
    assert model.prices == ModelPrices(**PRICES)
    assert {speed: model.prices[speed] for speed in model.rendering_speeds} == PRICES
    assert model.sizes[0] == ModelSize(size="1:1", width=1024, height=1024)
    assert [size.size for size in model.sizes] == ["1:1", "3:4", "9:16", "4:3", "16:9"]
    assert model.output_formats == ["jpeg", "png"]

    async def add_a_model_and_a_plan() -> None:
        async with live.server.services.db.transaction() as session:
            await create_model(
                SessionTx(session), "flux-schnell",
                ModelChange(title="FLUX.1 [schnell]", reports="black-forest-labs/flux-schnell",
                            prices={"TURBO": 3, "BALANCED": 3, "QUALITY": 5}, sizes=("1:1",)),
                0.0,
            )  # fmt: skip
            await save_plan(session, "half", "0.5", 0.0)
            await set_account_plan(session, account.id, "half")

    live.run(add_a_model_and_a_plan())
    flux, ideogram = client.models()
    assert (flux.name, ideogram.name) == ("flux-schnell", "ideogram-v4")
    assert flux.prices == ModelPrices(TURBO=2, BALANCED=2, QUALITY=3)  # rounded up
    assert ideogram.prices == ModelPrices(TURBO=8, BALANCED=14, QUALITY=22)
    assert [size.size for size in flux.sizes] == ["1:1"]
    only_flux = live.account(policy=PolicyChange(models=["flux-schnell"]))
    with Client(base_url=live.base_url, api_key=only_flux.key) as other:
        assert [model.name for model in other.models()] == ["flux-schnell"]
    with Client(base_url=live.base_url, api_key="sk-nope") as stranger:
        with pytest.raises(AuthenticationError):
            stranger.models()
