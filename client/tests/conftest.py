"""The SDK's tests run against a real imagegate server, with the server suite's fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# The server suite's fixtures (tests/conftest.py, importable as `conftest` from tests/).
from conftest import database_url, postgres, server, settings  # noqa: F401
from harness import Account
from imagegate.config import Settings
from imagegate_client import Client
from sdk_support import Live, live_server


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:  # noqa: F811
    """imagegate in a thread of its own, for the blocking Client and the CLI's processes."""
    with live_server(settings) as running:
        yield running


@pytest.fixture
def account(live: Live) -> Account:
    return live.account(1000)


@pytest.fixture
def client(live: Live, account: Account) -> Iterator[Client]:
    with Client(base_url=live.base_url, api_key=account.key) as sdk:
        yield sdk
