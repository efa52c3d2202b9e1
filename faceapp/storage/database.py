"""The gallery's SQLite connection: opening (checks, migrations, the passphrase),
transactions, the encryption key of its blobs, and wiping deleted data.

Every change is one ``BEGIN IMMEDIATE`` transaction that also bumps ``meta.revision``,
so a failure never leaves half a change and a live view can poll :meth:`revision`
to notice writes made by any process. The file is opened in WAL mode with a busy
timeout, so two processes wait for each other instead of failing or corrupting it.

Encryption at rest (opt-in): with ``meta.kdf`` (scrypt parameters and salt) and
``meta.key_check`` set, every ``embedding`` and ``thumbnail`` BLOB is an AES-GCM sealed
blob (:mod:`faceapp.storage.crypto`) whose associated data names the template id and
column, so blobs cannot be swapped. Every connection sets ``PRAGMA secure_delete = ON``;
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
from typing import Self

from faceapp.errors import GalleryChangedError, GalleryError
from faceapp.files import on_read_only_filesystem, os_error_line
from faceapp.storage import crypto
from faceapp.storage.crypto import KdfParams, PassphraseError
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


#: Every encrypted column: (table, the kind its associated data names, blob columns).
ENCRYPTED_BLOBS = (("templates", "template", ("embedding", "thumbnail")), ("sightings", "sighting", ("thumbnail", "embeddings")))


class GalleryDatabase:
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
            self._unlock(passphrase)
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

    @property
    def path(self) -> Path:
        """The gallery file."""
        return self._path

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self._path)!r})"


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

    @property
    def encrypted(self) -> bool:
        """True when embeddings and thumbnails are stored encrypted."""
        return self._key is not None

    def _unlock(self, passphrase: str | None) -> None:
        """Load the key of an encrypted gallery (PassphraseError if missing or wrong)."""
        conn = self._require()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            return
        values = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('kdf', 'key_check')").fetchall())
        if values.get("kdf") is None:
            if passphrase is not None:
                logger.info("gallery %s is not encrypted; the passphrase is not used", self._path)
            return
        try:
            params = KdfParams.from_json(values["kdf"])
        except ValueError as e:
            raise GalleryError(f"gallery {self._path} is damaged ({e})") from None
        check = values.get("key_check")
        if not isinstance(check, bytes):
            raise GalleryError(f"gallery {self._path} is damaged (its key check value is missing)")
        if passphrase is None:
            raise PassphraseError(
                f"gallery {self._path} is encrypted: give its passphrase "
                f"(set {crypto.PASSPHRASE_ENV} or answer the prompt)"
            )
        key = crypto.derive_key(passphrase, params)
        if not crypto.check_key(key, check):
            raise PassphraseError(f"wrong passphrase for gallery {self._path}")
        self._key, self._key_check = key, check

    def _check_key_current(self, conn: sqlite3.Connection) -> None:
        """Refuse to go on if another process encrypted, decrypted or re-keyed the gallery."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
        stored = None if row is None else row[0]
        if stored != self._key_check:
            raise GalleryChangedError(
                f"gallery {self._path} was encrypted, decrypted or given a new passphrase by another "
                "program; close it and open it again"
            )

    def _seal(self, data: bytes | None, row_id: int, column: str, table: str = "template") -> bytes | None:
        """Encrypt a blob of row ``row_id`` (bound to its table, row and column) when the gallery is."""
        if data is None or self._key is None:
            return data
        return crypto.seal(self._key, data, f"faceapp:{table}:{row_id}:{column}".encode())

    def _open_blob(self, data: bytes | None, row_id: int, column: str, table: str = "template") -> bytes | None:
        if data is None or self._key is None:
            return data
        try:
            return crypto.unseal(self._key, data, f"faceapp:{table}:{row_id}:{column}".encode())
        except ValueError as e:
            raise GalleryError(
                f"gallery {self._path} is damaged: the {column} of {table} {row_id} cannot be decrypted ({e})"
            ) from None

    def _rekey(self, new_key: bytes | None, kdf: KdfParams | None) -> None:
        """Rewrite every blob under ``new_key`` (None: plaintext) in ONE transaction."""
        new_check = None if new_key is None else crypto.make_key_check(new_key)
        with self._write() as conn:
            for table, kind, columns in ENCRYPTED_BLOBS:
                rows = conn.execute(f"SELECT id, {', '.join(columns)} FROM {table} ORDER BY id").fetchall()
                updates = []
                for row in rows:
                    blobs = [self._open_blob(blob, row[0], column, kind) for blob, column in zip(row[1:], columns)]
                    if new_key is not None:
                        blobs = [None if blob is None else crypto.seal(new_key, blob, f"faceapp:{kind}:{row[0]}:{column}".encode())
                                 for blob, column in zip(blobs, columns)]
                    updates.append((*blobs, row[0]))
                conn.executemany(f"UPDATE {table} SET {', '.join(c + ' = ?' for c in columns)} WHERE id = ?", updates)
            for key, value in (("kdf", None if kdf is None else kdf.to_json()), ("key_check", new_check)):
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
        self._key, self._key_check = new_key, new_check
        self.wipe_free_space()

    def encrypt(self, passphrase: str, *, kdf: KdfParams | None = None) -> None:
        """Encrypt a plaintext gallery's embeddings and thumbnails with ``passphrase``, in one
        transaction; the plaintext left in free pages is wiped afterwards."""
        with self._lock:
            if self._key is not None:
                raise GalleryError(f"gallery {self._path} is already encrypted (use change_passphrase)")
            params = (kdf or crypto.DEFAULT_KDF).with_new_salt()
            self._rekey(crypto.derive_key(passphrase, params), params)
        logger.info("gallery %s: encrypted", self._path)

    def _confirm(self, passphrase: str) -> None:
        row = self._require().execute("SELECT value FROM meta WHERE key = 'kdf'").fetchone()
        try:
            params = KdfParams.from_json(row[0])
        except (ValueError, TypeError) as e:
            raise GalleryError(f"gallery {self._path} is damaged ({e})") from None
        if self._key_check is None or not crypto.check_key(crypto.derive_key(passphrase, params), self._key_check):
            raise PassphraseError(f"wrong passphrase for gallery {self._path}")

    def decrypt(self, passphrase: str) -> None:
        """Store everything in plaintext again (``passphrase`` must be the current one)."""
        with self._lock:
            if self._key is None:
                raise GalleryError(f"gallery {self._path} is not encrypted")
            self._confirm(passphrase)
            self._rekey(None, None)
        logger.info("gallery %s: decrypted", self._path)

    def change_passphrase(self, old: str, new: str, *, kdf: KdfParams | None = None) -> None:
        """Re-encrypt every blob under a key from ``new`` (new salt), in one transaction.
        PassphraseError, with nothing changed, if ``old`` is wrong."""
        with self._lock:
            if self._key is None:
                raise GalleryError(f"gallery {self._path} is not encrypted (use encrypt)")
            self._confirm(old)
            params = (kdf or crypto.DEFAULT_KDF).with_new_salt()
            self._rekey(crypto.derive_key(new, params), params)
        logger.info("gallery %s: passphrase changed", self._path)

    @property
    def embeddings_only(self) -> bool:
        """True when no face thumbnail is ever stored (the GUI then shows initials)."""
        with self._lock:
            try:
                row = self._require().execute("SELECT value FROM meta WHERE key = 'embeddings_only'").fetchone()
            except sqlite3.Error as e:
                raise self._db_error(e) from e
        return bool(row and row[0])


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
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = ?", (counter,))
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

