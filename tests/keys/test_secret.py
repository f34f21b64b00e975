"""The server secret that API keys are hashed with."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from imagegate.config import Settings
from imagegate.keys.secret import load_or_create_secret


def test_racing_first_starts_agree_on_one_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        secrets = list(pool.map(lambda _: load_or_create_secret(tmp_path), range(32)))
    assert len(set(secrets)) == 1
    assert len(secrets[0]) >= 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("")
    with pytest.raises(RuntimeError, match="no usable secret"):
        load_or_create_secret(tmp_path)


def test_a_configured_secret_wins(tmp_path: Path) -> None:
    assert load_or_create_secret(tmp_path, "x" * 40) == b"x" * 40
    assert not (tmp_path / "secret.key").exists()


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::", "http://[::1]:8000"),
        ("10.0.0.5", "http://10.0.0.5:8000"),
    ],
)
def test_wildcard_bind_addresses_give_a_reachable_default_public_url(
    host: str, public: str
) -> None:
    assert Settings(host=host, port=8000).resolved_public_url == public
    assert Settings(host=host, public_url="https://img.example.com/").resolved_public_url == (
        "https://img.example.com"
    )
