"""The gallery's SQLite connection: opening (checks, migrations, the passphrase),
transactions, ``meta`` values and wiping deleted data (the engine-independent half,
encryption included, is :class:`~faceapp.storage.backend.BaseDatabase`).

Every change is one ``BEGIN IMMEDIATE`` transaction that also bumps ``meta.revision``,
so a failure never leaves half a change and a live view can poll :meth:`revision`
to notice writes made by any process. The file is opened in WAL mode with a busy
timeout, so two processes wait for each other instead of failing or corrupting it.

Every connection sets ``PRAGMA secure_delete = ON``;
removals then checkpoint the WAL (truncating it) and VACUUM, so deleted faces do not
linger in the file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from faceapp.errors import GalleryError
from faceapp.files import on_read_only_filesystem, os_error_line, search_index_files
from faceapp.storage.backend import BaseDatabase, Connection
from faceapp.storage.schema import (
    SCHEMA_VERSION,
    busy_error,
    connect_read_only,
    is_busy,
    migrate,
    one_line,
    read_version,
    side_files_present,
    tidy_side_files,
    validate_existing,
)

logger = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_MS = 5000


class GalleryDatabase(BaseDatabase):
    """A gallery file's connection. Usable from several threads (calls are serialised by
    a lock). :class:`~faceapp.storage.gallery.Gallery` adds the operations on its tables."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        passphrase: str | None = None,
        read_only: bool = False,
        create: bool = True,
    ) -> None:
        """Open (creating it and its parent folders if missing) and migrate the gallery.

        ``read_only``: the caller only reads an existing gallery. Where the file and its
        folder can be written it is opened as usual (SQLite then tidies its side files on
        close); where they cannot (read-only media, a read-only file), it is opened
        read-only, and every change is refused in one line.
        ``create=False``: a missing gallery is an error rather than a new, empty one.

        Raises GalleryError, without modifying the file, if it is not a valid FaceApp
        gallery (not SQLite, corrupt, truncated, foreign schema, or a newer schema version).
        An encrypted gallery needs its ``passphrase``: PassphraseError (a GalleryError) if
        it is missing or wrong, before anything is changed. A passphrase given for a
        plaintext gallery is ignored (see :attr:`encrypted`; :meth:`encrypt` converts it).
        """
        self._path = Path(os.fspath(path))
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._key: bytes | None = None
        self._key_check: bytes | None = None
        p = self._path
        self.read_only = bool(read_only) and not (os.access(p, os.W_OK) and os.access(p.parent, os.W_OK))
        if not str(path).strip():
            raise GalleryError("the gallery path is empty")
        try:
            mode_bits = p.stat().st_mode if p.exists() else None
            if mode_bits is not None:
                if not stat.S_ISREG(mode_bits):
                    raise GalleryError(f"gallery {p} is not a regular file")
                if p.stat().st_size > 0:
                    validate_existing(p, self._busy_timeout_ms)
                elif self.read_only:
                    raise GalleryError(f"gallery {p} is empty: nothing to read")
            elif read_only or not create:
                raise GalleryError(f"no gallery at {p} (enroll someone first, or check the path)")
            else:
                p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GalleryError(f"gallery {p}: {os_error_line(e)}") from None
        conn = self._connect(p)
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")
            if not self.read_only:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    logger.warning("gallery %s: journal mode is %s, not WAL", p, mode)
            self._unlock(conn, passphrase)
            self._migrate()
        except BaseException as e:
            conn.close()
            self._conn = None
            if isinstance(e, GalleryError):
                raise
            if isinstance(e, sqlite3.Error):
                raise self._db_error(e) from e
            raise

    def _connect(self, p: Path) -> sqlite3.Connection:
        """The connection: read-write, or read-only (``immutable`` where even SQLite's
        shared-memory file cannot be made, as on read-only media)."""
        timeout = self._busy_timeout_ms / 1000
        try:
            if not self.read_only:
                return sqlite3.connect(str(p), timeout=timeout, check_same_thread=False, isolation_level=None)
            return connect_read_only(p, timeout, check_same_thread=False)
        except sqlite3.Error as e:
            raise self._db_error(e) from None

    # ----- lifecycle

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


    @staticmethod
    def is_encrypted_file(path: str | os.PathLike[str]) -> bool:
        """True if the gallery file ``path`` exists and is encrypted (so the app must ask
        for a passphrase before opening it). Reads only; False for missing/empty files and
        for files that are not galleries (opening them gives the real error)."""
        p = Path(os.fspath(path))
        try:
            if not p.is_file() or p.stat().st_size == 0:
                return False
            before = side_files_present(p)
            ro = connect_read_only(p, DEFAULT_BUSY_TIMEOUT_MS / 1000)
        except (OSError, sqlite3.Error):
            return False
        try:
            row = ro.execute("SELECT value FROM meta WHERE key = 'kdf'").fetchone()
            return row is not None and row[0] is not None
        except sqlite3.Error:
            return False
        finally:
            ro.close()
            tidy_side_files(p, before)

    # ----- meta values

    def _has_meta(self, conn: Connection) -> bool:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is not None

    def _meta_get(self, conn: Connection, key: str) -> object:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _meta_set(self, conn: Connection, key: str, value: int | str | bytes | None) -> None:
        conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (key, value))

    def _bump(self, conn: Connection, counter: str) -> None:
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = ?", (counter,))

    def _peek_meta(self, key: str) -> object:
        """One meta value, read outside any transaction (cheap: the live view polls the revision)."""
        with self._lock:
            conn = self._require()
            try:
                return self._meta_get(conn, key)
            except sqlite3.Error as e:
                raise self._db_error(e) from e

    def _forget_search_index(self) -> None:
        for file in search_index_files(self._path):
            try:
                file.unlink(missing_ok=True)
            except OSError as e:
                logger.warning("gallery %s: could not delete its search index %s (%s)", self._path, file, os_error_line(e))

    def wipe_free_space(self) -> bool:
        """Checkpoint and truncate the WAL and VACUUM, so deleted data is gone from the files
        (``secure_delete`` already zeroes freed content). Best effort: returns False, with
        a warning, when another connection keeps the WAL busy; the next call finishes it."""
        with self._lock:
            conn = self._require()
            try:
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                conn.execute("VACUUM")
                busy = busy or conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error as e:
                logger.warning("gallery %s: could not wipe free space yet (%s)", self._path, one_line(e))
                return False
        if busy:
            logger.warning("gallery %s: another program is reading it; deleted data is wiped when it closes", self._path)
        return not busy


    def _migrate(self) -> None:
        """Apply pending migrations in order, all in one transaction."""
        conn = self._require()
        try:
            current = read_version(conn)
        except ValueError as e:
            raise GalleryError(f"{self._path} is not a FaceApp gallery ({e})") from e
        if current != SCHEMA_VERSION:
            if self.read_only:
                raise GalleryError(f"gallery {self._path} needs an upgrade of its format, which cannot be made while it is "
                                   "read-only: open it once where it can be written")
            migrate(lambda: self._write(check_key=False), self._path, current)

    # ----- transaction helpers

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise GalleryError(f"gallery {self._path} is closed")
        return self._conn

    def _busy_error(self) -> GalleryError:
        return busy_error(self._path)

    def _db_error(self, e: sqlite3.Error) -> GalleryError:
        """One line that says what is wrong (busy, read-only, full, corrupt...)."""
        if is_busy(e):
            return self._busy_error()
        code = (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF
        p = self._path
        if code in (8, 14) and on_read_only_filesystem(p):
            return GalleryError(f"gallery {p} is on a read-only file system: it can be read (list, identify, "
                                "recognize, export) but not changed")
        reason = {
            3: f"gallery {p}: permission denied",
            8: f"gallery {p} is read-only (opened for reading, or the file, its folder or the disk is not writable): "
               "it cannot be changed",
            10: f"gallery {p}: input/output error (a failing disk or medium?)",
            11: f"gallery {p} is corrupt ({one_line(e)})",
            13: f"the disk holding gallery {p} is full: nothing was changed",
            14: f"cannot open gallery {p}: its folder is missing or not writable",
            23: f"gallery {p}: permission denied",
            26: f"{p} is not a FaceApp gallery (not an SQLite database)",
        }.get(code)
        return GalleryError(reason or f"gallery {p}: database error: {one_line(e)}")

    @contextmanager
    def _write(self, *, check_key: bool = True, counter: str = "revision") -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE) that bumps ``counter`` (the gallery's
        ``revision``, or ``memory_revision`` for sightings and visitors); rolls back on any error."""
        with self._lock:
            conn = self._require()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise self._db_error(e) from e
            try:
                if check_key:
                    self._check_key_current(conn)
                yield conn
                self._bump(conn, counter)
                conn.execute("COMMIT")
            except BaseException as e:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    logger.debug("rollback failed", exc_info=True)
                if isinstance(e, sqlite3.Error):
                    raise self._db_error(e) from e
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot (one deferred transaction)."""
        with self._lock:
            conn = self._require()
            try:
                conn.execute("BEGIN")
                try:
                    self._check_key_current(conn)
                    yield conn
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as e:
                raise self._db_error(e) from e

