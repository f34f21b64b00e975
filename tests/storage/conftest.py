"""Fixtures of the storage tests: a moto S3 server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import Bucket


@pytest.fixture
def bucket() -> Iterator[Bucket]:
    running = Bucket()
    running.start()
    try:
        yield running
    finally:
        running.stop()
