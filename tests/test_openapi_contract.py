"""/openapi.json tells the truth: Schemathesis, with every one of its checks, over every
operation of a live server, finds nothing.

Its run: a fixed seed and no example database (the same cases each time), one worker, as two
users (so that object_level_authorization runs: neither may read the other's tasks). Its
deliberate exceptions are the hooks in openapi_contract_hooks.py, each with its reason: valid
requests that a task's state or another request makes the server refuse, and the test's own
safety (callbacks only to its loopback receiver)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from harness import Server
from imagegate.config import Settings
from imagegate.db.models import Task
from receiver import running_receiver

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
HOOKS = Path(__file__).with_name("openapi_contract_hooks.py")
USERS = ("alice", "bob")
EXAMPLES = 100  # per operation and phase: about 30 s on two cores
RUN_SECONDS = 300

CONFIG = """
[auth.wfc]
path = "{users}"
peers = {peers}
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Callbacks may reach loopback, where the hooks send every one. Tasks take a while, so that
    # a cancel, a wait or an event stream can find one still running.
    return settings.model_copy(update={"callback_allow_private": True, "simulator_delay": 2.0})


async def test_schemathesis_finds_nothing(server: Server, tmp_path: Path) -> None:
    users = []
    for name in USERS:
        account = await server.account(credits=100_000_000, name=name)
        header = {"name": "Authorization", "value": f"Bearer {account.key}"}
        users.append({"name": name, "fixedHeaders": [header]})
    (tmp_path / "users.json").write_text(json.dumps({"auth": users}))
    config = CONFIG.format(users=tmp_path / "users.json", peers=json.dumps(USERS))
    (tmp_path / "schemathesis.toml").write_text(config)
    async with running_receiver() as receiver:
        returncode, report = await schemathesis(
            "--config-file", str(tmp_path / "schemathesis.toml"),
            "run", f"{server.base_url}/openapi.json",
            "--checks", "all",
            "--max-examples", str(EXAMPLES),
            "--seed", "1",
            "--generation-database", "none",
            "--workers", "1",
            "--request-timeout", "30",
            "--no-color",
            cwd=tmp_path,
            env={"SCHEMATHESIS_HOOKS": str(HOOKS),
                 "IMAGEGATE_CONTRACT_CALLBACK_URL": receiver.url},
        )  # fmt: skip
    assert returncode == 0, report
    async with server.services.db.sessions() as session:
        callback_urls = set(await session.scalars(select(Task.callback_url).distinct()))
    assert callback_urls <= {None, receiver.url}


async def schemathesis(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run the schemathesis CLI (without blocking the server in this event loop): its exit
    status and output; killed after RUN_SECONDS."""
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS), *args, cwd=cwd, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_SECONDS)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        return -1, f"(killed after {RUN_SECONDS} s)\n" + output.decode(errors="replace")
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")
