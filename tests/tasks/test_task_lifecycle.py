"""The reference document's flows, as a client sees them over HTTP."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from harness import Server
from ocr import ocr

DAILY_BREW = {
    "model": "ideogram-v4",
    "callback_url": "https://your-server.com/webhook",
    "input": {
        "prompt": 'A minimalist coffee shop logo with the text "Daily Brew"',
        "size": "1:1",
        "rendering_speed": "BALANCED",
        "output_format": "png",
    },
}
SUMMER_NIGHTS = {
    "model": "ideogram-v4",
    "input": {
        "prompt": 'A retro concert poster with bold headline text "SUMMER NIGHTS"'
        " in neon typography",
        "size": "16:9",
        "rendering_speed": "TURBO",
    },
}


async def test_reference_examples_complete_with_images_and_exact_charges(
    server: Server, tmp_path: Path
) -> None:
    account = await server.account(credits=1000)
    expected = [
        (DAILY_BREW, "PNG", (1024, 1024), 28, "daily brew"),
        (SUMMER_NIGHTS, "JPEG", (1280, 720), 16, "summer nights"),
    ]
    balance = 1000
    for body, image_format, size, price, text in expected:
        created = await server.http.post(
            "/v1/images/generations", json=body, headers=account.headers
        )
        assert created.status_code == 200
        envelope = created.json()
        assert envelope["code"] == 200
        assert envelope["msg"] == "success"
        assert list(envelope) == ["code", "msg", "data"]
        assert list(envelope["data"]) == ["taskId"]
        balance -= price
        credits = await server.http.get("/v1/credits", headers=account.headers)
        assert credits.json() == {"code": 200, "msg": "success", "data": {"credits": balance}}

        task = await server.wait_final(account, envelope["data"]["taskId"])
        assert task["status"] == "completed"
        image = await server.http.get(task["output"]["urls"][0])
        assert image.status_code == 200
        assert image.headers["content-type"] == f"image/{image_format.lower()}"
        decoded = Image.open(io.BytesIO(image.content))
        assert (decoded.format, decoded.size) == (image_format, size)
        assert text in ocr(image.content, tmp_path)  # the quoted text, legible


async def test_completed_task_object_matches_the_reference(server: Server) -> None:
    account = await server.account()
    created = await server.create(account, output_format="png")
    task_id = created.json()["data"]["taskId"]
    task = await server.wait_final(account, task_id)
    assert list(task) == ["id", "status", "model", "created_at", "completed_at", "output"]
    assert task["id"] == task_id
    assert task["model"] == "ideogram-v4"
    assert isinstance(task["created_at"], int)
    assert isinstance(task["completed_at"], int)
    assert task["completed_at"] >= task["created_at"]
    assert task["output"]["metadata"] == {"model": "ideogram-ai/ideogram-v4"}
    (url,) = task["output"]["urls"]
    assert url.startswith(f"{server.base_url}/images/")
    assert url.endswith(".png")


async def test_status_moves_from_pending_through_processing(server: Server) -> None:
    server.services.settings.simulator_delay = 1.0
    account = await server.account()
    task_id = (await server.create(account)).json()["data"]["taskId"]
    seen = [(await server.task(account, task_id))["status"]]
    while seen[-1] not in ("completed", "failed"):
        status = (await server.task(account, task_id))["status"]
        if status != seen[-1]:
            seen.append(status)
    assert seen[-1] == "completed"
    assert "processing" in seen
    assert seen == sorted(seen, key=["pending", "processing", "completed"].index)
    processing = await server.create(account)
    task = await server.task(account, processing.json()["data"]["taskId"])
    assert list(task) == ["id", "status", "model", "created_at"]


async def test_defaults_are_1x1_balanced_jpeg(server: Server) -> None:
    account = await server.account(credits=100)
    created = await server.http.post(
        "/v1/images/generations",
        json={"model": "ideogram-v4", "input": {"prompt": "a lighthouse"}},
        headers=account.headers,
    )
    task = await server.wait_final(account, created.json()["data"]["taskId"])
    image = await server.http.get(task["output"]["urls"][0])
    decoded = Image.open(io.BytesIO(image.content))
    assert (decoded.format, decoded.size) == ("JPEG", (1024, 1024))
    assert task["output"]["urls"][0].endswith(".jpg")
    assert await server.ledger(account) == (72, 72)  # BALANCED costs 28


async def test_failed_task_shows_the_error_and_is_refunded_once(server: Server) -> None:
    account = await server.account(credits=100)
    created = await server.create(account, prompt="a sign [simulate:upstream_error]")
    assert created.status_code == 200
    task = await server.wait_final(account, created.json()["data"]["taskId"])
    assert task == {
        "id": task["id"],
        "status": "failed",
        "model": "ideogram-v4",
        "created_at": task["created_at"],
        "error": {"code": "upstream_error", "message": "Image generation failed"},
    }
    assert await server.ledger(account) == (100, 100)
    credits = await server.http.get("/v1/credits", headers=account.headers)
    assert credits.json()["data"]["credits"] == 100


async def test_tasks_of_other_accounts_and_unknown_ids_are_not_found(server: Server) -> None:
    owner, stranger = await server.account(), await server.account()
    task_id = (await server.create(owner)).json()["data"]["taskId"]
    for who, path in [
        (stranger, f"/v1/tasks/{task_id}"),
        (owner, "/v1/tasks/397ce9f2-c04e-4244-ac33-3af19a7cc297"),
        (owner, "/v1/tasks/not-a-uuid"),
    ]:
        response = await server.http.get(path, headers=who.headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "task_not_found"
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert (await server.task(owner, task_id))["id"] == task_id


async def test_images_are_served_only_by_their_unguessable_names(server: Server) -> None:
    account = await server.account()
    task = await server.wait_final(account, (await server.create(account)).json()["data"]["taskId"])
    url = task["output"]["urls"][0]
    name = url.rsplit("/", 1)[1]
    assert len(name.split(".")[0]) >= 32
    assert (await server.http.head(url)).headers["content-type"] == "image/jpeg"
    day = url.split("/images/")[1].rsplit("/", 1)[0]
    for path in [
        f"/images/{day}/{'x' * 32}.jpg",  # well formed, never issued
        "/images/..%2fsecret.key",
        f"/images/{day}/..%2F..%2F..%2F..%2Fsecret.key",
        f"/images/{day}/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.key",
        f"/images/{day}/{name}%00.png",
    ]:
        response = await server.http.get(path)
        assert response.status_code == 404, path  # no such image, as a CDN answers
        assert response.json()["error"]["message"].startswith("Image '"), path
