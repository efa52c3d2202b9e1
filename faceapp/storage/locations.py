"""Where a gallery is: a file path (SQLite) or a PostgreSQL server URL, and how to show
a URL without its password."""

from __future__ import annotations

import os
import re
from pathlib import Path

SERVER_SCHEMES = ("postgresql", "postgres")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PASSWORD_PARAMETER = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def url_scheme(location: object) -> str | None:
    """The scheme of ``location`` when it is written as a URL (``scheme://...``), else None."""
    if not isinstance(location, str):
        return None
    found = _URL.match(location)
    return found.group(1).lower() if found else None


def is_server_url(location: object) -> bool:
    """True for ``postgresql://...`` / ``postgres://...`` (a gallery on a server)."""
    return url_scheme(location) in SERVER_SCHEMES


def check_location(location: object) -> None:
    """ValueError (one line) for something written as a URL that no engine serves (a typo
    such as ``postgressql://`` must not become a local file named after the URL)."""
    scheme = url_scheme(location)
    if scheme is not None and scheme not in SERVER_SCHEMES:
        raise ValueError(f"unsupported gallery URL scheme {scheme!r}: use postgresql://USER@HOST/DATABASE, or a file path")


def redacted(url: str) -> str:
    """``url`` with its password (in ``user:password@`` or a ``password=`` parameter)
    replaced by ``***``, for messages, titles and logs. Never fails: whatever the URL's
    spelling (unencoded characters, several hosts), the text between ``user:`` and the
    last ``@`` of the authority is masked."""
    text = str(url)
    found = _URL.match(text)
    if not found:
        return text
    rest = text[found.end():]
    at = rest.rfind("@", 0, _authority_end(rest))
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        rest = f"{user}:***{rest[at:]}" if colon else rest
    return _PASSWORD_PARAMETER.sub(r"\1***", text[: found.end()] + rest)


def _authority_end(rest: str) -> int:
    """Where the authority (``user:password@hosts``) of a URL's ``rest`` ends: at the first
    "/" or "?" after its last "@" (a password may hold "/", "#" or "@")."""
    last_at = max(rest.rfind("@"), 0)
    ends = [i for i in (rest.find("/", last_at), rest.find("?", last_at)) if i >= 0]
    return min(ends) if ends else len(rest)


def scrub(message: str, url: str) -> str:
    """``message`` (a server's or library's error) without ``url``'s password in it."""
    shown = redacted(url)
    message = message.replace(str(url), shown)
    for secret in _secrets(str(url)):
        message = message.replace(secret, "***")
    return message


def _secrets(url: str) -> list[str]:
    from urllib.parse import unquote

    found = _URL.match(url)
    if not found:
        return []
    rest = url[found.end():]
    secrets = []
    if "@" in rest:
        userinfo = rest[: rest.rfind("@", 0, _authority_end(rest))]
        if ":" in userinfo:
            secrets.append(userinfo.partition(":")[2])
    secrets += [m.group(0).split("=", 1)[1] for m in _PASSWORD_PARAMETER.finditer(url)]
    return [s for candidate in secrets for s in {candidate, unquote(candidate)} if len(s) >= 1]


def describe(location: str | os.PathLike[str]) -> str:
    """The location as shown to the user."""
    return redacted(location) if is_server_url(location) else os.fspath(location)


def as_location(text: str | os.PathLike[str]) -> Path | str:
    """What the user typed or stored: anything written as a URL as is (opening a
    mistyped one is then refused by :func:`check_location`), else a file path (``~`` expanded)."""
    return text if url_scheme(text) is not None else Path(os.fspath(text)).expanduser()


def same_location(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name the same gallery (the same URL, or the same file)."""
    if is_server_url(a) or is_server_url(b):
        return str(a) == str(b)
    return Path(os.fspath(a)).expanduser().resolve() == Path(os.fspath(b)).expanduser().resolve()
