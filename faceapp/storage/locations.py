"""Where a gallery is: a file path (SQLite) or a PostgreSQL server URL, and how to show
a URL without its password."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SERVER_SCHEMES = ("postgresql", "postgres")


def is_server_url(location: object) -> bool:
    """True for ``postgresql://...`` / ``postgres://...`` (a gallery on a server)."""
    if not isinstance(location, str):
        return False
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.lower() in SERVER_SCHEMES


def redacted(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for messages and titles."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(an unreadable URL)"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def describe(location: str | os.PathLike[str]) -> str:
    """The location as shown to the user."""
    return redacted(location) if is_server_url(location) else os.fspath(location)


def as_location(text: str | os.PathLike[str]) -> Path | str:
    """What the user typed or stored: a server URL as is, else a file path (``~`` expanded)."""
    return text if is_server_url(text) else Path(os.fspath(text)).expanduser()


def same_location(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name the same gallery (the same URL, or the same file)."""
    if is_server_url(a) or is_server_url(b):
        return str(a) == str(b)
    return Path(os.fspath(a)).expanduser().resolve() == Path(os.fspath(b)).expanduser().resolve()
