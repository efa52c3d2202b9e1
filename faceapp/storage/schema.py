"""The gallery file's schema: migrations, version checks and structural checks.

Schema (version 4)::

    meta(key TEXT PRIMARY KEY, value)            -- schema_version, revision, and optionally
                                                 -- kdf (JSON), key_check (BLOB), embeddings_only
    people(id INTEGER PK, name TEXT UNIQUE NOT NULL, created_at REAL, threshold REAL NULL)
    templates(id INTEGER PK, person_id -> people ON DELETE CASCADE,
              embedding BLOB (float32 little-endian), dim INTEGER, model_id TEXT,
              quality REAL, thumbnail BLOB NULL, source TEXT, created_at REAL,
              kind TEXT 'positive' | 'negative')
    visitors(id INTEGER PK AUTOINCREMENT, created_at REAL, active_at REAL)  -- "Unknown #id"; ids never reused;
                                                 -- active_at: last time a face joined them
    sightings(id INTEGER PK, person_id -> people ON DELETE CASCADE NULL,
              visitor_id -> visitors ON DELETE CASCADE NULL,  -- both NULL: an unknown not yet clustered
              source TEXT, file TEXT NULL, first_seen REAL, last_seen REAL,
              first_frame INTEGER NULL, last_frame INTEGER NULL, frames INTEGER,
              best_similarity REAL, quality REAL, thumbnail BLOB NULL,
              embeddings BLOB (k x dim float32 little-endian), dim INTEGER, model_id TEXT)

Migration ``i`` takes the schema from version ``i`` to ``i + 1``; they run in order, in
one transaction, when a gallery is opened.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from faceapp.errors import GalleryError

logger = logging.getLogger(__name__)

_SQLITE_MAGIC = b"SQLite format 3\x00"
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (and their extended codes' low byte)


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def is_busy(exc: sqlite3.Error) -> bool:
    """True for SQLite's "database is busy / locked" errors."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Version 1: the initial schema."""
    conn.execute(
        """CREATE TABLE people (
               id INTEGER PRIMARY KEY,
               name TEXT UNIQUE NOT NULL,
               created_at REAL NOT NULL
           )"""
    )
    conn.execute(
        """CREATE TABLE templates (
               id INTEGER PRIMARY KEY,
               person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
               embedding BLOB NOT NULL,
               dim INTEGER NOT NULL,
               model_id TEXT NOT NULL,
               quality REAL NOT NULL,
               thumbnail BLOB,
               source TEXT NOT NULL,
               created_at REAL NOT NULL
           )"""
    )
    conn.execute("CREATE INDEX templates_person ON templates(person_id)")


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Version 2: privacy. No table changes: encryption (``meta.kdf``, ``meta.key_check``)
    and ``meta.embeddings_only`` live in meta; the new version only keeps older FaceApps,
    which cannot read encrypted blobs, from opening the file."""
    conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('embeddings_only', 0)")


def _migrate_v3(conn: sqlite3.Connection) -> None:
    """Version 3: open-set decisions. ``templates.kind`` ('positive', or 'negative': a face
    that is *not* the person), ``people.threshold`` (the person's own threshold, NULL =
    automatic)."""
    conn.execute("ALTER TABLE templates ADD COLUMN kind TEXT NOT NULL DEFAULT 'positive' CHECK (kind IN ('positive', 'negative'))")
    conn.execute("ALTER TABLE people ADD COLUMN threshold REAL")


def _migrate_v4(conn: sqlite3.Connection) -> None:
    """Version 4: people memory. ``visitors`` (unknown people seen, "Unknown #id") and
    ``sightings`` (one per track: who, where, when, its best crop and embeddings);
    ``meta.memory_revision`` counts their changes (the gallery's ``revision`` counts
    changes of people and templates only, which is what the matcher follows)."""
    conn.execute("CREATE TABLE visitors (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, active_at REAL NOT NULL)")
    conn.execute(
        """CREATE TABLE sightings (
               id INTEGER PRIMARY KEY,
               person_id INTEGER REFERENCES people(id) ON DELETE CASCADE,
               visitor_id INTEGER REFERENCES visitors(id) ON DELETE CASCADE,
               source TEXT NOT NULL,
               file TEXT,
               first_seen REAL NOT NULL,
               last_seen REAL NOT NULL,
               first_frame INTEGER,
               last_frame INTEGER,
               frames INTEGER NOT NULL,
               best_similarity REAL NOT NULL,
               quality REAL NOT NULL,
               thumbnail BLOB,
               embeddings BLOB NOT NULL,
               dim INTEGER NOT NULL,
               model_id TEXT NOT NULL,
               CHECK (person_id IS NULL OR visitor_id IS NULL)
           )"""
    )
    conn.execute("CREATE INDEX sightings_time ON sightings(last_seen)")
    conn.execute("CREATE INDEX sightings_person ON sightings(person_id)")
    conn.execute("CREATE INDEX sightings_visitor ON sightings(visitor_id)")
    conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('memory_revision', 0)")
    conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('retention_days', 30)")


# Migration i (0-based) takes the schema from version i to version i + 1. Append only.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_v1, _migrate_v2, _migrate_v3, _migrate_v4)
SCHEMA_VERSION = len(MIGRATIONS)

# Columns the current schema must have (checked when opening an existing file).
_EXPECTED_COLUMNS = {
    "people": {"id", "name", "created_at", "threshold"},
    "templates": {
        "id",
        "person_id",
        "embedding",
        "dim",
        "model_id",
        "quality",
        "thumbnail",
        "source",
        "created_at",
        "kind",
    },
    "visitors": {"id", "created_at", "active_at"},
    "sightings": {
        "id", "person_id", "visitor_id", "source", "file", "first_seen", "last_seen", "first_frame", "last_frame",
        "frames", "best_similarity", "quality", "thumbnail", "embeddings", "dim", "model_id",
    },
}


def read_version(conn: sqlite3.Connection) -> int:
    """schema_version from meta; 0 when the database has no tables yet."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return 0
    if "meta" not in tables:
        raise ValueError("it has no meta table")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or isinstance(row[0], bool) or not isinstance(row[0], int) or row[0] < 0:
        raise ValueError("its schema_version is missing or invalid")
    return int(row[0])


def check_header(path: Path) -> None:
    """Cheap structural checks on an existing, non-empty file; raise ValueError if bad.

    Catches non-SQLite files and truncation (file shorter than the page count in its
    header) before SQLite reads anything; deeper damage is found by ``PRAGMA quick_check``.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(100)
    if not head.startswith(_SQLITE_MAGIC):
        raise ValueError("not an SQLite database")
    if len(head) < 100:
        raise ValueError("the file is truncated")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise ValueError("invalid page size")
    if size % page_size:
        raise ValueError("the file is truncated")
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return  # another process may be mid-checkpoint: leave the rest to PRAGMA quick_check
    page_count = int.from_bytes(head[28:32], "big")
    header_count_valid = head[24:28] == head[92:96]
    if header_count_valid and page_count and size < page_count * page_size:
        raise ValueError("the file is truncated")



def side_files_present(path: Path) -> set[Path]:
    """The ``-wal``/``-shm`` files of ``path`` that exist now (see :func:`tidy_side_files`)."""
    return {f for f in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")) if f.exists()}


def tidy_side_files(path: Path, before: set[Path]) -> None:
    """After a read-only probe of a WAL gallery is closed: remove the ``-wal``/``-shm``
    files it made (SQLite leaves them behind a read-only connection). Only when the
    ``-wal`` is empty, i.e. nobody has written through them."""
    made = side_files_present(path) - before
    wal = path.with_name(path.name + "-wal")
    if not made or (wal.exists() and wal.stat().st_size > 0):
        return
    for file in made:
        try:
            file.unlink()
        except OSError:
            pass


def connect_read_only(path: Path, timeout_s: float, **kwargs) -> sqlite3.Connection:
    """A read-only connection to ``path``. Where SQLite cannot even create its
    shared-memory file (read-only media), the file is read as immutable."""
    uri = "file:" + quote(os.fsencode(path.resolve()))
    conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=timeout_s, isolation_level=None, **kwargs)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.Error:
        conn.close()
        logger.info("gallery %s: reading it as immutable (read-only media)", path)
        return sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, timeout=timeout_s, isolation_level=None, **kwargs)


def busy_error(path: Path) -> GalleryError:
    return GalleryError(f"gallery {path} is busy (used by another process); try again later")


def validate_existing(path: Path, busy_timeout_ms: int) -> None:
    """Read-only checks of an existing file; raise GalleryError if it is not a usable gallery."""
    p = path
    try:
        check_header(p)
    except OSError as e:
        raise GalleryError(f"cannot read gallery {p}: {e.strerror or e}") from e
    except ValueError as e:
        raise GalleryError(f"{p} is not a valid FaceApp gallery ({e})") from e
    before = side_files_present(p)
    try:
        ro = connect_read_only(p, busy_timeout_ms / 1000)
    except sqlite3.Error as e:
        tidy_side_files(p, before)
        raise GalleryError(f"cannot open gallery {p}: {one_line(e)}") from e
    try:
        result = [r[0] for r in ro.execute("PRAGMA quick_check")]
        if result != ["ok"]:
            raise GalleryError(
                f"gallery {p} is corrupt ({one_line(result[0]) if result else 'check failed'})"
            )
        try:
            version = read_version(ro)
        except ValueError as e:
            raise GalleryError(f"{p} is not a FaceApp gallery ({e})") from e
        if version > SCHEMA_VERSION:
            raise GalleryError(
                f"gallery {p} was made by a newer FaceApp (schema version {version}; "
                f"this version supports up to {SCHEMA_VERSION}); please upgrade FaceApp"
            )
        if version == SCHEMA_VERSION:
            for table, expected in _EXPECTED_COLUMNS.items():
                cols = {r[1] for r in ro.execute(f"PRAGMA table_info({table})")}
                if not expected <= cols:
                    raise GalleryError(
                        f"{p} is not a FaceApp gallery (table {table!r} is missing or wrong)"
                    )
    except sqlite3.Error as e:
        if is_busy(e):
            raise busy_error(p) from e
        raise GalleryError(f"{p} is not a valid FaceApp gallery ({one_line(e)})") from e
    finally:
        ro.close()
        tidy_side_files(p, before)


def migrate(write, path: Path, current: int) -> None:
    """Bring the schema from version ``current`` to :data:`SCHEMA_VERSION`; ``write`` is
    the gallery's write-transaction context manager (no key check)."""
    with write() as c:
        current = read_version(c)  # re-read: another process may have migrated meanwhile
        if current > SCHEMA_VERSION:
            raise GalleryError(f"gallery {path} was made by a newer FaceApp (schema version {current}); please upgrade")
        if current == 0:
            c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value)")
            c.execute("INSERT INTO meta(key, value) VALUES ('revision', 0)")
        for version in range(current, SCHEMA_VERSION):
            logger.info("gallery %s: migrating schema %d -> %d", path, version, version + 1)
            MIGRATIONS[version](c)
        c.execute(
            "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (SCHEMA_VERSION,),
        )
