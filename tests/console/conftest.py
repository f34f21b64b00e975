from __future__ import annotations

import pytest

from imagegate.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The console's tests: anyone may sign up; keys' last use written quickly."""
    return settings.model_copy(update={"signup": "open", "key_usage_flush_seconds": 0.2})
