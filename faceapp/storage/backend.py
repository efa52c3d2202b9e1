"""What every gallery database shares, whichever engine holds it: the passphrase and the
encryption of blobs, the ``meta`` values (revision counters, privacy settings) and the
transaction interface the gallery's operations are written against.

Two engines implement it: :class:`~faceapp.storage.database.GalleryDatabase` (one SQLite
file, the default) and :class:`~faceapp.storage.postgres.PostgresDatabase` (a PostgreSQL
server with pgvector, shared by several desktops). Their SQL is the same (written with
``?`` placeholders; the PostgreSQL connection translates it), their differences stay in
these hooks:

* ``_write(counter=...)`` / ``_read()``: one write transaction (writers serialised, the
  counter bumped) / one consistent read snapshot, each yielding a connection whose
  ``execute(sql, params)`` returns a cursor with ``fetchone``, ``fetchall``, ``rowcount``
  and ``lastrowid``;
* ``_meta_get`` / ``_meta_set`` / ``_bump``: the typed ``meta`` values;
* ``_templates_written`` / ``_rekeyed``: keep an engine's own copy of embeddings (the
  server's vector column) in step;
* ``wipe_free_space``, ``revision``, ``close``, ``location``.

Encryption at rest (opt-in): with ``meta.kdf`` (scrypt parameters and salt) and
``meta.key_check`` set, every ``embedding`` and ``thumbnail`` blob is an AES-GCM sealed
blob (:mod:`faceapp.storage.crypto`) whose associated data names the row and column, so
blobs cannot be swapped. The key never leaves the client.
"""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager
from typing import Any, Self

from faceapp.errors import GalleryChangedError, GalleryError
from faceapp.storage import crypto
from faceapp.storage.crypto import KdfParams, PassphraseError

logger = logging.getLogger(__name__)

#: Every encrypted column: (table, the kind its associated data names, blob columns).
ENCRYPTED_BLOBS = (("templates", "template", ("embedding", "thumbnail")), ("sightings", "sighting", ("thumbnail", "embeddings")))

#: A connection inside a transaction (sqlite3.Connection, or the PostgreSQL adapter).
Connection = Any


class BaseDatabase:
    """The engine-independent half of a gallery's database (see the module docstring)."""

    _path: Any
    _lock: threading.RLock
    _key: bytes | None = None
    _key_check: bytes | None = None
    read_only: bool = False
    #: How long an operation waits for a server gallery that cannot be reached (a file: unused).
    retry_s: float = 10.0

    # ----- engine hooks

    def _write(self, *, check_key: bool = True, counter: str = "revision") -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _meta_get(self, conn: Connection, key: str) -> object:
        """The value of ``meta.key`` (int, str or bytes), None when absent."""
        raise NotImplementedError

    def _meta_set(self, conn: Connection, key: str, value: int | str | bytes | None) -> None:
        raise NotImplementedError

    def _has_meta(self, conn: Connection) -> bool:
        """True once the schema exists (a new, empty database has no meta table yet)."""
        raise NotImplementedError

    def _templates_written(self, conn: Connection, rows: list[tuple[int, bytes]]) -> None:
        """After templates' embeddings were inserted or replaced (``(id, float32 LE bytes)``)."""

    def _rekeyed(self, conn: Connection, encrypted: bool) -> None:
        """After every blob was rewritten under a new key (or in plaintext)."""

    def wipe_free_space(self) -> bool:
        raise NotImplementedError

    def _forget_search_index(self) -> None:
        """After templates were removed, changed or encrypted: a search index kept beside
        the gallery would still hold their embeddings in clear (the app rebuilds it)."""

    def close(self) -> None:
        raise NotImplementedError

    @property
    def location(self) -> str:
        """Where the gallery is, for messages (a file path, or a URL without its password)."""
        return str(self._path)

    @property
    def reopen_location(self):
        """What opens this gallery again (its file; a server URL with its password, if any)."""
        return self._path

    @property
    def connection_problem(self) -> str | None:
        """None while the gallery can be reached; else one line saying what is wrong and
        what is being tried (a server gallery whose connection dropped)."""
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"

    # ----- counters and settings

    def _peek_meta(self, key: str) -> object:
        """One meta value, read outside (or inside the thread's current) transaction."""
        raise NotImplementedError

    def revision(self) -> int:
        """A counter bumped by every committed change of people or templates, from any process."""
        return self._counter("revision")

    def _counter(self, key: str) -> int:
        value = self._peek_meta(key)
        try:
            return int(value) if value is not None else 0  # type: ignore[call-overload]
        except (TypeError, ValueError):  # hand-edited; the next change writes a number again
            logger.warning("gallery %s: its %s counter %r is not a number; taken as 0", self.location, key, value)
            return 0

    @property
    def embeddings_only(self) -> bool:
        """True when no face thumbnail is ever stored (the GUI then shows initials)."""
        return bool(self._peek_meta("embeddings_only"))

    # ----- encryption

    @property
    def encrypted(self) -> bool:
        """True when embeddings and thumbnails are stored encrypted."""
        return self._key is not None

    def _unlock(self, conn: Connection, passphrase: str | None) -> None:
        """Load the key of an encrypted gallery (PassphraseError if missing or wrong)."""
        if not self._has_meta(conn):
            return
        kdf, check = self._meta_get(conn, "kdf"), self._meta_get(conn, "key_check")
        if kdf is None:
            if passphrase is not None:
                logger.info("gallery %s is not encrypted; the passphrase is not used", self.location)
            return
        try:
            params = KdfParams.from_json(kdf)  # type: ignore[arg-type]
        except (ValueError, TypeError) as e:
            raise GalleryError(f"gallery {self.location} is damaged ({e})") from None
        if not isinstance(check, bytes):
            raise GalleryError(f"gallery {self.location} is damaged (its key check value is missing)")
        if passphrase is None:
            raise PassphraseError(
                f"gallery {self.location} is encrypted: give its passphrase "
                f"(set {crypto.PASSPHRASE_ENV} or answer the prompt)"
            )
        key = crypto.derive_key(passphrase, params)
        if not crypto.check_key(key, check):
            raise PassphraseError(f"wrong passphrase for gallery {self.location}")
        self._key, self._key_check = key, check

    def _check_key_current(self, conn: Connection) -> None:
        """Refuse to go on if another process encrypted, decrypted or re-keyed the gallery."""
        stored = self._meta_get(conn, "key_check")
        if stored != self._key_check:
            raise GalleryChangedError(
                f"gallery {self.location} was encrypted, decrypted or given a new passphrase by another "
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
                f"gallery {self.location} is damaged: the {column} of {table} {row_id} cannot be decrypted ({e})"
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
            self._meta_set(conn, "kdf", None if kdf is None else kdf.to_json())
            self._meta_set(conn, "key_check", new_check)
            old = self._key
            self._key = new_key  # the hook reads plaintext embeddings back through the new key
            try:
                self._rekeyed(conn, new_key is not None)
            except BaseException:
                self._key = old
                raise
        self._key, self._key_check = new_key, new_check
        if new_key is not None:
            self._forget_search_index()
        self.wipe_free_space()

    def encrypt(self, passphrase: str, *, kdf: KdfParams | None = None) -> None:
        """Encrypt a plaintext gallery's embeddings and thumbnails with ``passphrase``, in one
        transaction; the plaintext left in free pages is wiped afterwards."""
        with self._lock:
            if self._key is not None:
                raise GalleryError(f"gallery {self.location} is already encrypted (use change_passphrase)")
            params = (kdf or crypto.DEFAULT_KDF).with_new_salt()
            self._rekey(crypto.derive_key(passphrase, params), params)
        logger.info("gallery %s: encrypted", self.location)

    def _confirm(self, passphrase: str) -> None:
        kdf = self._peek_meta("kdf")
        try:
            params = KdfParams.from_json(kdf)  # type: ignore[arg-type]
        except (ValueError, TypeError) as e:
            raise GalleryError(f"gallery {self.location} is damaged ({e})") from None
        if self._key_check is None or not crypto.check_key(crypto.derive_key(passphrase, params), self._key_check):
            raise PassphraseError(f"wrong passphrase for gallery {self.location}")

    def decrypt(self, passphrase: str) -> None:
        """Store everything in plaintext again (``passphrase`` must be the current one)."""
        with self._lock:
            if self._key is None:
                raise GalleryError(f"gallery {self.location} is not encrypted")
            self._confirm(passphrase)
            self._rekey(None, None)
        logger.info("gallery %s: decrypted", self.location)

    def change_passphrase(self, old: str, new: str, *, kdf: KdfParams | None = None) -> None:
        """Re-encrypt every blob under a key from ``new`` (new salt), in one transaction.
        PassphraseError, with nothing changed, if ``old`` is wrong."""
        with self._lock:
            if self._key is None:
                raise GalleryError(f"gallery {self.location} is not encrypted (use encrypt)")
            self._confirm(old)
            params = (kdf or crypto.DEFAULT_KDF).with_new_salt()
            self._rekey(crypto.derive_key(new, params), params)
        logger.info("gallery %s: passphrase changed", self.location)

