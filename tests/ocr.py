"""Reading images back as a person would: tesseract OCR (Debian package tesseract-ocr)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def ocr(data: bytes, tmp_path: Path) -> str:
    """The text tesseract reads in ``data``, lower-cased with whitespace collapsed."""
    tesseract = shutil.which("tesseract")
    if tesseract is None:
        pytest.fail(
            "the `tesseract` OCR program is not installed; it checks that the simulator's "
            "text is legible (Debian/Ubuntu: apt-get install tesseract-ocr)"
        )
    path = tmp_path / "image"
    path.write_bytes(data)
    result = subprocess.run(
        [tesseract, str(path), "stdout", "--psm", "6"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return normalise(result.stdout)


def normalise(text: str) -> str:
    return " ".join(text.lower().split())
