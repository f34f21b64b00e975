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
    if not path.exists():
        # Written whole under a temporary name, then linked into place: a reader never sees a
        # half-written secret, and when two processes race the first link wins for both.
        partial = data_dir / f".secret.key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(partial, path)
        except FileExistsError:
            pass
        finally:
            partial.unlink()
    secret = path.read_bytes().strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds no usable secret; remove it to make a new one")
    return secret
