"""The server secret that keys are hashed with (HMAC-SHA256)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_secret(data_dir: Path, configured: str = "") -> bytes:
    """The configured secret, else the one in ``data_dir/secret.key``, created on first use.

    Every process that shares a database must use the same secret: on one machine they share the
    data dir; across machines set IMAGEGATE_SECRET_KEY.
    """
    if configured:
        return configured.encode()
    path = data_dir / "secret.key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_bytes().strip()
