"""Checking files against their recorded sha256 before they are used."""

from __future__ import annotations

import hashlib
from pathlib import Path

from faceapp.errors import ModelError


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_file(path: Path, expected_sha256: str | None, what: str) -> Path:
    """Return ``path`` if it exists and has the expected sha256, else raise ModelError."""
    if not path.is_file():
        kind = "is not a regular file" if path.exists() else "is missing"
        raise ModelError(f"{what} file {kind}: {path}")
    if expected_sha256 and sha256_of(path) != expected_sha256:
        raise ModelError(f"{what} file is damaged (sha256 mismatch): {path}")
    return path
