"""The face gallery: people and their face templates, in one SQLite file.

Schema (version 2)::

    meta(key TEXT PRIMARY KEY, value)            -- schema_version, revision, and optionally
                                                 -- kdf (JSON), key_check (BLOB), embeddings_only
    people(id INTEGER PK, name TEXT UNIQUE NOT NULL, created_at REAL)
    templates(id INTEGER PK, person_id -> people ON DELETE CASCADE,
              embedding BLOB (float32 little-endian), dim INTEGER, model_id TEXT,
              quality REAL, thumbnail BLOB NULL, source TEXT, created_at REAL)

Every change is one ``BEGIN IMMEDIATE`` transaction that also bumps ``meta.revision``,
so a failure never leaves half a change and a live view can poll :meth:`Gallery.revision`
to notice writes made by any process. The file is opened in WAL mode with a busy
timeout, so two processes wait for each other instead of failing or corrupting it.

All templates in one gallery share one ``model_id`` and one embedding dimension.

Privacy (schema version 2, no table change; version 1 files are migrated on open):

- Encryption at rest (opt-in): with ``meta.kdf`` (scrypt parameters and salt) and
  ``meta.key_check`` set, every ``embedding`` and ``thumbnail`` BLOB is an AES-GCM sealed
  blob (:mod:`faceapp.storage.crypto`) whose associated data names the template id and column, so
  blobs cannot be swapped. Names, model ids, qualities, sources and times stay plaintext.
  :meth:`Gallery.encrypt`, :meth:`Gallery.decrypt` and :meth:`Gallery.change_passphrase`
  rewrite every blob in one transaction. Version 2 keeps older FaceApps (which would read
  ciphertext as embeddings) from opening the file.
- ``meta.embeddings_only`` = 1: thumbnails are dropped on every insert.
- Every connection sets ``PRAGMA secure_delete = ON``; removals then checkpoint the WAL
  (truncating it) and VACUUM, so deleted faces do not linger in the file.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self
from urllib.parse import quote

import numpy as np

from faceapp.errors import GalleryError, ModelMismatchError, UnknownPersonError
from faceapp.storage import crypto
from faceapp.storage.crypto import KdfParams, PassphraseError

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_THUMBNAIL_BYTES",
    "SCHEMA_VERSION",
    "Gallery",
    "GalleryMatrix",
    "ImportSummary",
    "NewTemplate",
    "OnConflict",
    "PassphraseError",
    "Person",
    "PersonRecord",
    "Template",
    "normalize_name",
]

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 100
MAX_THUMBNAIL_BYTES = 1 << 20  # a 112x112 PNG/JPEG is a few tens of KiB
DEFAULT_BUSY_TIMEOUT_MS = 5000

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (and their extended codes' low byte)

OnConflict = Literal["merge", "skip", "error"]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Person:
    """One enrolled person. ``created_at`` is unix time (s)."""

    id: int
    name: str
    created_at: float
    template_count: int


@dataclass(frozen=True)
class NewTemplate:
    """A template the pipeline hands in.

    ``embedding``: float32 (D,), L2-normalised (any finite float 1-D array is accepted and
    stored as float32). ``thumbnail``: PNG or JPEG encoded bytes of the aligned 112x112
    face, or None. ``created_at``: unix time; None means "now" (archives set it to keep
    the original time).
    """

    embedding: np.ndarray
    model_id: str
    quality: float = 1.0
    thumbnail: bytes | None = None
    source: str = ""
    created_at: float | None = None


@dataclass(frozen=True)
class Template:
    """A stored template. ``embedding``: float32 (D,)."""

    id: int
    person_id: int
    embedding: np.ndarray
    model_id: str
    quality: float
    thumbnail: bytes | None
    source: str
    created_at: float


@dataclass(frozen=True)
class GalleryMatrix:
    """Everything matching needs, in one shot.

    ``embeddings``: float32 (N, D), one row per template (shape (0, 0) for an empty gallery).
    ``person_index``: int64 (N,), index into ``names`` for each row.
    ``names``: one per person with >= 1 template, in :meth:`Gallery.people` order.
    ``model_id``: the model of every row, or None when N == 0.
    """

    embeddings: np.ndarray
    person_index: np.ndarray
    names: tuple[str, ...]
    model_id: str | None


@dataclass(frozen=True)
class PersonRecord:
    """One person for :meth:`Gallery.import_people`; ``templates`` may be empty."""

    name: str
    created_at: float
    templates: tuple[NewTemplate, ...]


@dataclass(frozen=True)
class ImportSummary:
    """What :meth:`Gallery.import_people` (and ``archive.import_gallery``) did."""

    people_added: int
    people_merged: int
    people_skipped: int
    templates_added: int


@dataclass(frozen=True)
class _Row:
    """A validated template ready to insert: embedding already little-endian float32 bytes."""

    blob: bytes
    dim: int
    model_id: str
    quality: float
    thumbnail: bytes | None
    source: str
    created_at: float | None


# --------------------------------------------------------------------------- validation


def normalize_name(name: object) -> str:
    """Return the canonical form of a person's name (NFC, stripped) or raise GalleryError.

    Rejects non-strings, empty names, names longer than MAX_NAME_LENGTH characters and
    names containing control or line/paragraph-separator characters.
    """
    if not isinstance(name, str):
        raise GalleryError(f"a person's name must be text, not {type(name).__name__}")
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise GalleryError("a person's name cannot be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise GalleryError(f"a person's name must be at most {MAX_NAME_LENGTH} characters (got {len(name)})")
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in name):
        raise GalleryError(f"a person's name cannot contain control characters: {name!r}")
    return name


def _lookup_name(name: object) -> str:
    """Canonical form of a name used only for lookup (no validation beyond the type)."""
    if not isinstance(name, str):
        raise GalleryError(f"a person's name must be text, not {type(name).__name__}")
    return unicodedata.normalize("NFC", name).strip()


def _finite_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise GalleryError(f"{what} must be a number, not {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise GalleryError(f"{what} must be finite (got {out})")
    return out


def _prepare(t: NewTemplate, index: int) -> _Row:
    """Validate one NewTemplate and convert it to an insertable row."""
    where = f"template #{index + 1}"
    if not isinstance(t, NewTemplate):
        raise GalleryError(f"{where} is a {type(t).__name__}, not a NewTemplate")
    emb = t.embedding
    if not isinstance(emb, np.ndarray):
        raise GalleryError(f"{where}: embedding must be a numpy array, not {type(emb).__name__}")
    if emb.ndim != 1 or emb.shape[0] == 0:
        raise GalleryError(f"{where}: embedding must be a non-empty 1-D array (got shape {emb.shape})")
    if emb.dtype.kind != "f":
        raise GalleryError(f"{where}: embedding must be a float array (got dtype {emb.dtype})")
    with np.errstate(over="ignore", invalid="ignore"):
        vec = emb.astype("<f4")
    if not np.all(np.isfinite(vec)):
        raise GalleryError(f"{where}: embedding contains NaN or infinite values")
    if not float(np.linalg.norm(vec.astype(np.float64))) > 1e-6:
        raise GalleryError(f"{where}: embedding is all zeros")
    if not isinstance(t.model_id, str) or not t.model_id.strip():
        raise GalleryError(f"{where}: model_id must be a non-empty string")
    quality = _finite_number(t.quality, f"{where}: quality")
    thumb = t.thumbnail
    if thumb is not None:
        if not isinstance(thumb, (bytes, bytearray, memoryview)):
            raise GalleryError(f"{where}: thumbnail must be encoded image bytes or None")
        thumb = bytes(thumb)
        if len(thumb) > MAX_THUMBNAIL_BYTES:
            raise GalleryError(
                f"{where}: thumbnail is too large ({len(thumb)} bytes, max {MAX_THUMBNAIL_BYTES})"
            )
        if not thumb.startswith((_PNG_MAGIC, _JPEG_MAGIC)):
            raise GalleryError(f"{where}: thumbnail is not PNG or JPEG data")
    if not isinstance(t.source, str):
        raise GalleryError(f"{where}: source must be a string")
    created = None if t.created_at is None else _finite_number(t.created_at, f"{where}: created_at")
    return _Row(vec.tobytes(), int(vec.shape[0]), t.model_id, quality, thumb, t.source, created)


def _prepare_all(templates: Sequence[NewTemplate]) -> list[_Row]:
    """Validate a batch: each template, and one model_id and one dim across the batch."""
    if isinstance(templates, NewTemplate) or not isinstance(templates, Sequence):
        raise GalleryError("templates must be a sequence of NewTemplate")
    rows = [_prepare(t, i) for i, t in enumerate(templates)]
    for r in rows[1:]:
        if r.model_id != rows[0].model_id:
            raise ModelMismatchError(
                f"templates from different models in one batch ({rows[0].model_id!r} and {r.model_id!r})"
            )
        if r.dim != rows[0].dim:
            raise GalleryError(f"templates of different dimensions in one batch ({rows[0].dim} and {r.dim})")
    return rows


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


# --------------------------------------------------------------------------- schema


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


# Migration i (0-based) takes the schema from version i to version i + 1. Append only.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_v1, _migrate_v2)
SCHEMA_VERSION = len(MIGRATIONS)

# Columns the current schema must have (checked when opening an existing file).
_EXPECTED_COLUMNS = {
    "people": {"id", "name", "created_at"},
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
    },
}


def _read_version(conn: sqlite3.Connection) -> int:
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


def _check_header(path: Path) -> None:
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


# --------------------------------------------------------------------------- gallery


class Gallery:
    """A gallery file. Usable from several threads (calls are serialised by a lock)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        passphrase: str | None = None,
    ) -> None:
        """Open (creating it and its parent folders if missing) and migrate the gallery.

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
        if p.exists():
            if not p.is_file():
                raise GalleryError(f"gallery {p} is not a file")
            if p.stat().st_size > 0:
                self._validate_existing()
        else:
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise GalleryError(f"cannot create the folder for gallery {p}: {e.strerror or e}") from e
        try:
            conn = sqlite3.connect(
                str(p), timeout=self._busy_timeout_ms / 1000, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as e:
            raise GalleryError(f"cannot open gallery {p}: {_one_line(e)}") from e
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")
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
        return f"Gallery({str(self._path)!r})"

    # ----- encryption and privacy

    @staticmethod
    def is_encrypted_file(path: str | os.PathLike[str]) -> bool:
        """True if the gallery file ``path`` exists and is encrypted (so the app must ask
        for a passphrase before opening it). Reads only; False for missing/empty files and
        for files that are not galleries (opening them gives the real error)."""
        p = Path(os.fspath(path))
        try:
            if not p.is_file() or p.stat().st_size == 0:
                return False
            uri = "file:" + quote(str(p.resolve())) + "?mode=ro"
            ro = sqlite3.connect(uri, uri=True, timeout=DEFAULT_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except (OSError, sqlite3.Error):
            return False
        try:
            row = ro.execute("SELECT value FROM meta WHERE key = 'kdf'").fetchone()
            return row is not None and row[0] is not None
        except sqlite3.Error:
            return False
        finally:
            ro.close()

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
            raise GalleryError(
                f"gallery {self._path} was encrypted, decrypted or given a new passphrase by another "
                "program; close it and open it again"
            )

    def _seal(self, data: bytes | None, template_id: int, column: str) -> bytes | None:
        if data is None or self._key is None:
            return data
        return crypto.seal(self._key, data, f"faceapp:template:{template_id}:{column}".encode())

    def _open_blob(self, data: bytes | None, template_id: int, column: str) -> bytes | None:
        if data is None or self._key is None:
            return data
        try:
            return crypto.unseal(self._key, data, f"faceapp:template:{template_id}:{column}".encode())
        except ValueError as e:
            raise GalleryError(
                f"gallery {self._path} is damaged: the {column} of template {template_id} cannot be decrypted ({e})"
            ) from None

    def _rekey(self, new_key: bytes | None, kdf: KdfParams | None) -> None:
        """Rewrite every blob under ``new_key`` (None: plaintext) in ONE transaction."""
        new_check = None if new_key is None else crypto.make_key_check(new_key)
        with self._write() as conn:
            rows = conn.execute("SELECT id, embedding, thumbnail FROM templates ORDER BY id").fetchall()
            updates = []
            for tid, emb, thumb in rows:
                emb, thumb = self._open_blob(emb, tid, "embedding"), self._open_blob(thumb, tid, "thumbnail")
                if new_key is not None:
                    emb = crypto.seal(new_key, emb, f"faceapp:template:{tid}:embedding".encode())
                    if thumb is not None:
                        thumb = crypto.seal(new_key, thumb, f"faceapp:template:{tid}:thumbnail".encode())
                updates.append((emb, thumb, tid))
            conn.executemany("UPDATE templates SET embedding = ?, thumbnail = ? WHERE id = ?", updates)
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

    def set_embeddings_only(self, enabled: bool) -> int:
        """Turn embeddings-only mode on or off. Turning it on deletes every stored thumbnail
        (in the same transaction) and wipes them from the file; returns how many were deleted."""
        with self._write() as conn:
            deleted = 0
            if enabled:
                deleted = conn.execute("UPDATE templates SET thumbnail = NULL WHERE thumbnail IS NOT NULL").rowcount
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('embeddings_only', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (1 if enabled else 0,),
            )
        if deleted:
            self.wipe_free_space()
        logger.info("gallery %s: embeddings-only %s (%d thumbnail(s) deleted)", self._path, enabled, deleted)
        return deleted

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
                logger.warning("gallery %s: could not wipe free space yet (%s)", self._path, _one_line(e))
                return False
        if busy:
            logger.warning("gallery %s: another program is reading it; deleted data is wiped when it closes", self._path)
        return not busy

    # ----- opening

    def _validate_existing(self) -> None:
        """Read-only checks of an existing file; raise GalleryError if it is not a usable gallery."""
        p = self._path
        try:
            _check_header(p)
        except OSError as e:
            raise GalleryError(f"cannot read gallery {p}: {e.strerror or e}") from e
        except ValueError as e:
            raise GalleryError(f"{p} is not a valid FaceApp gallery ({e})") from e
        uri = "file:" + quote(str(p.resolve())) + "?mode=ro"
        try:
            ro = sqlite3.connect(uri, uri=True, timeout=self._busy_timeout_ms / 1000, isolation_level=None)
        except sqlite3.Error as e:
            raise GalleryError(f"cannot open gallery {p}: {_one_line(e)}") from e
        try:
            result = [r[0] for r in ro.execute("PRAGMA quick_check")]
            if result != ["ok"]:
                raise GalleryError(
                    f"gallery {p} is corrupt ({_one_line(result[0]) if result else 'check failed'})"
                )
            try:
                version = _read_version(ro)
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
            if _is_busy(e):
                raise self._busy_error() from e
            raise GalleryError(f"{p} is not a valid FaceApp gallery ({_one_line(e)})") from e
        finally:
            ro.close()

    def _migrate(self) -> None:
        """Apply pending migrations in order, all in one transaction."""
        conn = self._require()
        try:
            current = _read_version(conn)
        except ValueError as e:
            raise GalleryError(f"{self._path} is not a FaceApp gallery ({e})") from e
        if current == SCHEMA_VERSION:
            return
        with self._write(check_key=False) as c:
            current = _read_version(c)  # re-read: another process may have migrated meanwhile
            if current > SCHEMA_VERSION:
                raise GalleryError(
                    f"gallery {self._path} was made by a newer FaceApp (schema version {current}); please upgrade"
                )
            if current == 0:
                c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value)")
                c.execute("INSERT INTO meta(key, value) VALUES ('revision', 0)")
            for version in range(current, SCHEMA_VERSION):
                logger.info("gallery %s: migrating schema %d -> %d", self._path, version, version + 1)
                MIGRATIONS[version](c)
            c.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (SCHEMA_VERSION,),
            )

    # ----- transaction helpers

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise GalleryError(f"gallery {self._path} is closed")
        return self._conn

    def _busy_error(self) -> GalleryError:
        return GalleryError(f"gallery {self._path} is busy (used by another process); try again later")

    def _db_error(self, e: sqlite3.Error) -> GalleryError:
        if _is_busy(e):
            return self._busy_error()
        return GalleryError(f"gallery {self._path}: database error: {_one_line(e)}")

    @contextmanager
    def _write(self, *, check_key: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE) that bumps the revision; rolls back on any error."""
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
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
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

    # ----- helpers inside a transaction

    def _person_id(self, conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownPersonError(f"no person named {name!r} in the gallery")
        return int(row[0])

    def _person(self, conn: sqlite3.Connection, name: str) -> Person:
        row = conn.execute(
            "SELECT p.id, p.name, p.created_at, COUNT(t.id) FROM people p "
            "LEFT JOIN templates t ON t.person_id = p.id WHERE p.name = ? GROUP BY p.id",
            (name,),
        ).fetchone()
        if row is None:
            raise UnknownPersonError(f"no person named {name!r} in the gallery")
        return Person(int(row[0]), row[1], float(row[2]), int(row[3]))

    def _check_compatible(self, conn: sqlite3.Connection, rows: Sequence[_Row]) -> None:
        """Refuse rows whose model_id or dim differs from the templates already stored."""
        if not rows:
            return
        existing = conn.execute("SELECT model_id, dim FROM templates LIMIT 1").fetchone()
        if existing is None:
            return
        model_id, dim = existing
        new = rows[0]
        if new.model_id != model_id:
            raise ModelMismatchError(
                f"the templates were made by model {new.model_id!r} but the gallery holds templates from "
                f"model {model_id!r}; re-enroll everyone with {new.model_id!r} in a new gallery, "
                f"or use the matching model {model_id!r}"
            )
        if new.dim != dim:
            raise GalleryError(f"embedding dimension {new.dim} does not match the gallery's dimension {dim}")

    def _insert(self, conn: sqlite3.Connection, person_id: int, rows: Sequence[_Row], now: float) -> None:
        # Ids are chosen here (we hold the write lock) so encrypted blobs can be bound to them.
        first = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM templates").fetchone()[0]) + 1
        row = conn.execute("SELECT value FROM meta WHERE key = 'embeddings_only'").fetchone()
        keep_thumbnails = not (row and row[0])
        conn.executemany(
            "INSERT INTO templates(id, person_id, embedding, dim, model_id, quality, thumbnail, source, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    tid,
                    person_id,
                    self._seal(r.blob, tid, "embedding"),
                    r.dim,
                    r.model_id,
                    r.quality,
                    self._seal(r.thumbnail if keep_thumbnails else None, tid, "thumbnail"),
                    r.source,
                    now if r.created_at is None else r.created_at,
                )
                for tid, r in enumerate(rows, first)
            ],
        )

    def _new_person(self, conn: sqlite3.Connection, name: str, created_at: float) -> int:
        if conn.execute("SELECT 1 FROM people WHERE name = ?", (name,)).fetchone() is not None:
            raise GalleryError(f"a person named {name!r} is already in the gallery")
        cur = conn.execute("INSERT INTO people(name, created_at) VALUES (?, ?)", (name, created_at))
        if cur.lastrowid is None:
            raise GalleryError(f"gallery {self._path}: could not add {name!r}")
        return int(cur.lastrowid)

    # ----- reading

    def people(self) -> list[Person]:
        """All people, sorted by name (case-insensitively, then exactly)."""
        with self._read() as conn:
            return self._people(conn)

    def _people(self, conn: sqlite3.Connection) -> list[Person]:
        rows = conn.execute(
            "SELECT p.id, p.name, p.created_at, COUNT(t.id) FROM people p "
            "LEFT JOIN templates t ON t.person_id = p.id GROUP BY p.id"
        ).fetchall()
        people = [Person(int(r[0]), r[1], float(r[2]), int(r[3])) for r in rows]
        people.sort(key=lambda p: _sort_key(p.name))
        return people

    def person(self, name: str) -> Person:
        """The person called ``name``; UnknownPersonError if absent."""
        key = _lookup_name(name)
        with self._read() as conn:
            return self._person(conn, key)

    def templates(self, name: str | None = None) -> list[Template]:
        """All templates (of ``name`` only, if given), in insertion (id) order."""
        with self._read() as conn:
            pid = None if name is None else self._person_id(conn, _lookup_name(name))
            return self._templates(conn, pid)

    def _templates(self, conn: sqlite3.Connection, person_id: int | None) -> list[Template]:
        sql = (
            "SELECT id, person_id, embedding, model_id, quality, thumbnail, source, created_at FROM templates"
        )
        if person_id is None:
            rows = conn.execute(sql + " ORDER BY id").fetchall()
        else:
            rows = conn.execute(sql + " WHERE person_id = ? ORDER BY id", (person_id,)).fetchall()
        return [self._template(r) for r in rows]

    def _template(self, r: tuple) -> Template:
        tid = int(r[0])
        blob = self._open_blob(r[2], tid, "embedding")
        emb = np.frombuffer(blob, dtype="<f4").astype(np.float32)  # type: ignore[arg-type]
        thumb = self._open_blob(r[5], tid, "thumbnail")
        return Template(tid, int(r[1]), emb, r[3], float(r[4]), thumb, r[6], float(r[7]))

    def snapshot(self) -> tuple[list[Person], list[Template]]:
        """People (sorted as :meth:`people`) and all templates, read in one consistent snapshot."""
        with self._read() as conn:
            return self._people(conn), self._templates(conn, None)

    def model_id(self) -> str | None:
        """The model_id of the stored templates, or None when there are none."""
        with self._read() as conn:
            row = conn.execute("SELECT model_id FROM templates LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def matrix(self, model_id: str) -> GalleryMatrix:
        """All templates as one matrix for matching with embeddings from ``model_id``.

        Raises ModelMismatchError if any stored template comes from another model.
        """
        with self._read() as conn:
            other = conn.execute(
                "SELECT model_id FROM templates WHERE model_id != ? LIMIT 1", (model_id,)
            ).fetchone()
            if other is not None:
                raise ModelMismatchError(
                    f"the gallery holds templates from model {other[0]!r} but model {model_id!r} is in use; "
                    f"re-enroll the gallery with {model_id!r} or use the matching model {other[0]!r}"
                )
            rows = conn.execute(
                "SELECT p.name, t.embedding, t.dim, t.id FROM templates t JOIN people p ON p.id = t.person_id "
                "ORDER BY p.id, t.id"
            ).fetchall()
        if self._key is not None:
            rows = [(r[0], self._open_blob(r[1], r[3], "embedding"), r[2], r[3]) for r in rows]
        if not rows:
            return GalleryMatrix(np.zeros((0, 0), np.float32), np.zeros((0,), np.int64), (), None)
        dims = {int(r[2]) for r in rows}
        if len(dims) != 1 or any(len(r[1]) != 4 * int(r[2]) for r in rows):
            raise GalleryError(f"gallery {self._path} is corrupt (inconsistent embedding sizes)")
        names = tuple(sorted({r[0] for r in rows}, key=_sort_key))
        order = {n: i for i, n in enumerate(names)}
        rows.sort(key=lambda r: order[r[0]])  # stable: keeps template id order within a person
        dim = dims.pop()
        emb = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
        emb = emb.astype(np.float32)  # native-endian, writable copy
        idx = np.fromiter((order[r[0]] for r in rows), dtype=np.int64, count=len(rows))
        return GalleryMatrix(emb, idx, names, model_id)

    def revision(self) -> int:
        """A counter bumped by every committed change, from any process."""
        with self._lock:
            conn = self._require()
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
            except sqlite3.Error as e:
                raise self._db_error(e) from e
        return int(row[0]) if row else 0

    # ----- writing

    def add_person(self, name: str, templates: Sequence[NewTemplate]) -> Person:
        """Create a new person with >= 1 templates. GalleryError if the name is taken."""
        key = normalize_name(name)
        rows = _prepare_all(templates)
        if not rows:
            raise GalleryError(f"cannot add {key!r} without any face templates")
        now = time.time()
        with self._write() as conn:
            self._check_compatible(conn, rows)
            pid = self._new_person(conn, key, now)
            self._insert(conn, pid, rows, now)
            person = self._person(conn, key)
        logger.info("gallery: added %r with %d template(s)", key, len(rows))
        return person

    def add_templates(self, name: str, templates: Sequence[NewTemplate]) -> Person:
        """Add templates to an existing person; returns the updated person."""
        key = _lookup_name(name)
        rows = _prepare_all(templates)
        if not rows:
            raise GalleryError("no templates to add")
        now = time.time()
        with self._write() as conn:
            pid = self._person_id(conn, key)
            self._check_compatible(conn, rows)
            self._insert(conn, pid, rows, now)
            person = self._person(conn, key)
        logger.info("gallery: added %d template(s) to %r", len(rows), key)
        return person

    def rename(self, old: str, new: str) -> Person:
        """Rename a person; GalleryError if ``new`` is taken by someone else."""
        old_key = _lookup_name(old)
        new_key = normalize_name(new)
        with self._write() as conn:
            pid = self._person_id(conn, old_key)
            if new_key != old_key:
                if conn.execute("SELECT 1 FROM people WHERE name = ?", (new_key,)).fetchone():
                    raise GalleryError(f"a person named {new_key!r} is already in the gallery")
                conn.execute("UPDATE people SET name = ? WHERE id = ?", (new_key, pid))
            person = self._person(conn, new_key)
        logger.info("gallery: renamed %r to %r", old_key, new_key)
        return person

    def merge(self, source: str, target: str) -> Person:
        """Move all templates of ``source`` to ``target`` and delete ``source``; returns ``target``."""
        src_key, dst_key = _lookup_name(source), _lookup_name(target)
        with self._write() as conn:
            src = self._person_id(conn, src_key)
            dst = self._person_id(conn, dst_key)
            if src == dst:
                raise GalleryError(f"cannot merge {src_key!r} into itself")
            conn.execute("UPDATE templates SET person_id = ? WHERE person_id = ?", (dst, src))
            conn.execute("DELETE FROM people WHERE id = ?", (src,))
            person = self._person(conn, dst_key)
        logger.info("gallery: merged %r into %r", src_key, dst_key)
        return person

    def remove(self, name: str) -> None:
        """Delete a person and all their templates."""
        key = _lookup_name(name)
        with self._write() as conn:
            pid = self._person_id(conn, key)
            conn.execute("DELETE FROM people WHERE id = ?", (pid,))
        self.wipe_free_space()
        logger.info("gallery: removed %r", key)

    def remove_template(self, template_id: int) -> None:
        """Delete one template; the person stays even if it was their last one."""
        if isinstance(template_id, bool) or not isinstance(template_id, (int, np.integer)):
            raise GalleryError(f"a template id must be an integer, not {type(template_id).__name__}")
        with self._write() as conn:
            cur = conn.execute("DELETE FROM templates WHERE id = ?", (int(template_id),))
            if cur.rowcount == 0:
                raise GalleryError(f"no template with id {int(template_id)} in the gallery")
        self.wipe_free_space()
        logger.info("gallery: removed template %d", int(template_id))

    def replace_embeddings(
        self, embeddings: dict[int, np.ndarray], model_id: str, remove: Sequence[int] = ()
    ) -> None:
        """Switch the whole gallery to another model in ONE transaction.

        ``embeddings``: ``{template id: float32 (D,) embedding from model_id}`` for some
        templates; ``remove``: the ids of all the others, which are deleted (people stay,
        possibly with no template). Every stored template must be named exactly once,
        else GalleryError (the gallery changed meanwhile) and nothing is written.
        """
        ids = [int(i) for i in embeddings]
        rows = _prepare_all([NewTemplate(embeddings[i], model_id) for i in embeddings])
        removed = {int(i) for i in remove}
        if removed & set(ids):
            raise GalleryError("a template cannot be both re-embedded and removed")
        with self._write() as conn:
            stored = {int(r[0]) for r in conn.execute("SELECT id FROM templates")}
            if stored != set(ids) | removed:
                raise GalleryError(f"gallery {self._path} changed while re-embedding; run it again")
            conn.executemany(
                "UPDATE templates SET embedding = ?, dim = ?, model_id = ? WHERE id = ?",
                [(self._seal(r.blob, i, "embedding"), r.dim, r.model_id, i) for i, r in zip(ids, rows)],
            )
            conn.executemany("DELETE FROM templates WHERE id = ?", [(i,) for i in sorted(removed)])
        if removed:
            self.wipe_free_space()
        logger.info("gallery: %d template(s) re-embedded with %r, %d removed", len(ids), model_id, len(removed))

    def import_people(
        self, records: Sequence[PersonRecord], *, on_conflict: OnConflict = "error"
    ) -> ImportSummary:
        """Add many people (keeping their created_at times) in ONE transaction.

        ``on_conflict`` decides what happens to a name already in the gallery: "error"
        (GalleryError, nothing written), "skip" (leave the existing person alone) or
        "merge" (append the templates to the existing person). Every template is validated
        and must match the gallery's model_id and dim, whatever ``on_conflict`` says.
        """
        if on_conflict not in ("merge", "skip", "error"):
            raise GalleryError(f"on_conflict must be 'merge', 'skip' or 'error', not {on_conflict!r}")
        prepared: list[tuple[str, float, list[_Row]]] = []
        seen: set[str] = set()
        all_rows: list[_Row] = []
        for rec in records:
            if not isinstance(rec, PersonRecord):
                raise GalleryError(f"expected a PersonRecord, got {type(rec).__name__}")
            key = normalize_name(rec.name)
            if key in seen:
                raise GalleryError(f"the name {key!r} appears twice in the import")
            seen.add(key)
            created = _finite_number(rec.created_at, f"created_at of {key!r}")
            try:
                rows = _prepare_all(rec.templates)
            except GalleryError as e:
                raise type(e)(f"{key!r}: {e}") from e
            prepared.append((key, created, rows))
            all_rows.extend(rows)
        _prepare_all_consistent(all_rows)
        added = merged = skipped = count = 0
        now = time.time()
        with self._write() as conn:
            self._check_compatible(conn, all_rows)
            for key, created, rows in prepared:
                row = conn.execute("SELECT id FROM people WHERE name = ?", (key,)).fetchone()
                if row is None:
                    pid = self._new_person(conn, key, created)
                    added += 1
                elif on_conflict == "error":
                    raise GalleryError(
                        f"a person named {key!r} is already in the gallery (choose to merge or skip)"
                    )
                elif on_conflict == "skip":
                    skipped += 1
                    continue
                else:
                    pid = int(row[0])
                    merged += 1
                    # Importing the same backup twice must not duplicate templates.
                    have = {t.embedding.astype("<f4").tobytes() for t in self._templates(conn, pid)}
                    rows = [r for r in rows if r.blob not in have]
                self._insert(conn, pid, rows, now)
                count += len(rows)
        summary = ImportSummary(added, merged, skipped, count)
        logger.info("gallery: imported %s", summary)
        return summary


def _prepare_all_consistent(rows: Sequence[_Row]) -> None:
    """One model_id and one dim across already-validated rows of several people."""
    for r in rows[1:]:
        if r.model_id != rows[0].model_id:
            raise ModelMismatchError(
                f"templates from different models in one import ({rows[0].model_id!r} and {r.model_id!r})"
            )
        if r.dim != rows[0].dim:
            raise GalleryError(f"templates of different dimensions in one import ({rows[0].dim} and {r.dim})")


def _sort_key(name: str) -> tuple[str, str]:
    return (name.casefold(), name)
