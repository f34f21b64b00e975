"""`imagegate generate` as a user sees it, on a terminal and on a pipe, against a real server."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from cli_support import cli_env, run_on_terminal, run_piped
from imagegate.config import Settings
from imagegate_client import PRICES
from sdk_support import Live, live_server

PROMPT = 'A retro concert poster with bold headline text "SUMMER NIGHTS"'


@pytest.fixture
def slow(settings: Settings) -> Iterator[Live]:
    """A server whose images take a second: long enough for several progress frames."""
    with live_server(settings.model_copy(update={"simulator_delay": 1.0})) as running:
        yield running


def test_generate_on_a_terminal_shows_a_spinner_and_writes_the_file(
    slow: Live, tmp_path: Path
) -> None:
    env = cli_env(slow.base_url, slow.account(1000).key)
    run = run_on_terminal(
        "generate", PROMPT, "--size", "16:9", "--speed", "TURBO", "-o", "poster.jpg",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.terminal
    frames = re.findall(
        r"\r([|/\\-]) (pending|processing) (\d+\.\d)s  task ([0-9a-f-]+)", run.terminal
    )
    assert len(frames) >= 5, run.terminal  # redrawn in place, a tenth of a second apart
    assert {frame for frame, *_ in frames} == set("|/-\\")
    assert "processing" in {status for _, status, *_ in frames}
    elapsed = [float(seconds) for _, _, seconds, _ in frames]
    assert elapsed == sorted(elapsed)
    assert elapsed[-1] >= 0.9
    assert re.search(r"\r\x1b\[Kcompleted after \d+\.\ds\r\n$", run.terminal), run.terminal
    assert run.stdout == f"poster.jpg  ({PRICES['TURBO']} credits)\n"
    with Image.open(io.BytesIO((tmp_path / "poster.jpg").read_bytes())) as image:
        assert (image.format, image.size) == ("JPEG", (1280, 720))


def test_generate_on_a_pipe_prints_one_line_per_status(slow: Live, tmp_path: Path) -> None:
    account = slow.account(1000)
    env = cli_env(slow.base_url, account.key)
    run = run_piped("generate", PROMPT, "--format", "png", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr
    lines = run.stderr.splitlines()
    task_id = lines[0].split()[1].rstrip(":")
    assert [re.sub(r"\(\d+\.\ds\)", "(T)", line) for line in lines] == [
        f"task {task_id}: pending (T)",
        f"task {task_id}: processing (T)",
        f"task {task_id}: completed (T)",
    ]
    assert run.stdout == f"{task_id}.png  ({PRICES['BALANCED']} credits)\n"
    assert (tmp_path / f"{task_id}.png").read_bytes().startswith(b"\x89PNG")
    balance = run_piped("credits", env=env)
    assert balance.stdout == f"{1000 - PRICES['BALANCED']} credits\n"
