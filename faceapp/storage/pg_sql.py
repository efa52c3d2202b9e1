"""The gallery's SQL on PostgreSQL: one connection inside a transaction that runs the
statements written for SQLite (``?`` placeholders, ``INSERT OR IGNORE``, two-argument
``MAX``, ``x''``, ``lastrowid``), and the one-line errors of the server's failures.

The translation is deliberately small and literal: the gallery's statements use only
these SQLite spellings (a test runs every gallery operation on both engines).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from faceapp.errors import GalleryError
from faceapp.storage.schema import one_line

#: Tables whose rows have an ``id`` an INSERT returns (``lastrowid``).
_ID_TABLES = ("people", "templates", "visitors", "sightings")
_INSERT_ID = re.compile(r"^\s*INSERT\s+INTO\s+(" + "|".join(_ID_TABLES) + r")\b", re.IGNORECASE)
_GREATEST = re.compile(r"\bMAX\(\s*([\w.]+)\s*,\s*(\?|[\w.]+)\s*\)", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def translate(sql: str, returning: bool, parameters: bool = True) -> str:
    """PostgreSQL's spelling of one of the gallery's statements (``parameters``: it is run
    with parameters, so a literal ``%`` must be doubled; no statement has a ``?`` inside a
    string literal)."""
    out = sql.replace("%", "%%") if parameters else sql
    ignore = re.match(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", out, re.IGNORECASE)
    if ignore:
        out = "INSERT INTO" + out[ignore.end():] + " ON CONFLICT DO NOTHING"
    out = _GREATEST.sub(r"GREATEST(\1, \2)", out)
    out = out.replace("x''", "'\\x'::bytea")
    out = out.replace("?", "%s")
    if returning and _INSERT_ID.match(out) and "RETURNING" not in out.upper():
        out += " RETURNING id"
    return out


class Cursor:
    """What the gallery reads from a statement: rows, ``rowcount``, ``lastrowid``."""

    def __init__(self, cursor: Any, lastrowid: int | None) -> None:
        self._cursor = cursor
        self.lastrowid = lastrowid
        self.rowcount = cursor.rowcount

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self):
        return iter(self.fetchall())


class Connection:
    """A psycopg connection inside one transaction, answering ``execute`` and
    ``executemany`` as :mod:`sqlite3` does."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    def execute(self, sql: str, params: tuple | list = ()) -> Cursor:
        statement = translate(sql, True, bool(params))
        cursor = self.raw.execute(statement, tuple(params) if params else None)
        lastrowid = None
        if statement.endswith(" RETURNING id"):
            row = cursor.fetchone()
            lastrowid = None if row is None else int(row[0])
        return Cursor(cursor, lastrowid)

    def executemany(self, sql: str, rows) -> Cursor:
        rows = [tuple(r) for r in rows]
        cursor = self.raw.cursor()
        if rows:
            cursor.executemany(translate(sql, False), rows)
        return Cursor(cursor, None)


def server_error(error: Exception, where: str) -> GalleryError:
    """One line that says what the server refused, and what to do."""
    import psycopg
    from psycopg import errors

    message = one_line(getattr(getattr(error, "diag", None), "message_primary", None) or error)
    if isinstance(error, errors.InsufficientPrivilege):
        return GalleryError(f"gallery {where}: permission denied ({message}); the role needs the rights listed in the "
                            "README (section 'A shared gallery on PostgreSQL')")
    if isinstance(error, (errors.ReadOnlySqlTransaction,)):
        return GalleryError(f"gallery {where} is read-only on this server (a standby?): it can be read but not changed")
    if isinstance(error, (errors.DiskFull, errors.OutOfMemory)):
        return GalleryError(f"the server holding gallery {where} is out of space: nothing was changed")
    if isinstance(error, errors.UndefinedFile) or "vector" in message and isinstance(error, errors.FeatureNotSupported):
        return GalleryError(f"the server of gallery {where} has no pgvector extension: install it and run "
                            "CREATE EXTENSION vector in the database (as its owner or a superuser)")
    if isinstance(error, errors.SerializationFailure | errors.DeadlockDetected | errors.LockNotAvailable):
        return GalleryError(f"gallery {where} is busy (used by another desktop); try again")
    if isinstance(error, psycopg.OperationalError):
        return GalleryError(f"cannot reach the gallery server {where}: {message}")
    return GalleryError(f"gallery {where}: database error: {message}")
