"""A gallery on a PostgreSQL server with pgvector, shared by several desktops.

``Gallery("postgresql://USER@HOST/DB")`` gives the same operations as a gallery file
(the SQL is shared, :mod:`faceapp.storage.pg_sql`; the schema is
:mod:`faceapp.storage.pg_schema`). What the server changes:

* Writers: every change is one transaction that first takes the gallery's advisory
  lock, so writers from any number of desktops queue instead of losing each other's
  changes (the file's ``BEGIN IMMEDIATE``); readers see one snapshot (REPEATABLE READ).
* Changes reach the other desktops by LISTEN/NOTIFY: each transaction that bumps a
  counter notifies ``faceapp_gallery`` with the counter's new value; a listener thread
  keeps the counters current, so :meth:`revision` (polled every frame by the live view)
  costs no round trip, and a new enrollment reaches every desktop within a second.
* A dropped connection is retried with back-off (0.25 s doubling to 8 s, for up to
  :attr:`retry_s` per operation); meanwhile :attr:`connection_problem` says so (the
  status line shows it) and the counters keep their last values, so a live view goes on
  with the gallery it has.
* Plaintext templates are also kept as ``vector(D)`` with an HNSW index (cosine) for
  :meth:`nearest_templates`; an encrypted gallery keeps only sealed blobs, which the
  server cannot index: it is matched on the client.
* Deleted rows are reclaimed by the server (autovacuum); wiping its disks is the
  server's business, not the app's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from faceapp.errors import GalleryError
from faceapp.storage import pg_schema
from faceapp.storage.backend import BaseDatabase
from faceapp.storage.gallery import Gallery
from faceapp.storage.locations import redacted
from faceapp.storage.pg_sql import Connection, server_error
from faceapp.storage.schema import SCHEMA_VERSION, one_line

logger = logging.getLogger(__name__)
# The pool logs every failed reconnection; the gallery says it once per change (connection_problem).
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

CHANNEL = "faceapp_gallery"
LOCK_KEY = 0x46616365  # "Face": the gallery's writer lock (advisory locks are per database)
_META_COLUMNS = {int: "int_value", bool: "int_value", float: "real_value", str: "text_value", bytes: "blob_value"}
_COUNTERS = ("revision", "memory_revision")


def _configure(conn: Any) -> None:
    """Every pooled connection: the gallery's schema first on the search path, vectors as numpy."""
    conn.execute("SELECT set_config('search_path', %s || current_setting('search_path'), false)", (f"{pg_schema.SCHEMA}, ",))
    if conn.execute("SELECT 1 FROM pg_type WHERE typname = 'vector'").fetchone():
        from pgvector.psycopg import register_vector

        register_vector(conn)


class PostgresDatabase(BaseDatabase):
    """A gallery's connection to a PostgreSQL server (see the module docstring).
    Usable from several threads (transactions are serialised by a lock)."""

    def __init__(self, url: str, *, passphrase: str | None = None, read_only: bool = False, create: bool = True,
                 busy_timeout_ms: int | None = None, connect_timeout_s: float = 5.0, retry_s: float = 10.0) -> None:
        import psycopg
        from psycopg.conninfo import make_conninfo

        self._url = str(url)
        self._path = redacted(self._url)
        self._lock = threading.RLock()
        self._current: Connection | None = None
        self._owner: int | None = None  # the thread whose transaction is _current
        self._last_error: str | None = None
        self._problem: str | None = None
        self._counters: dict[str, int] = {}
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._pool = None
        self.retry_s = float(retry_s)
        self.read_only = False  # the server decides what this role may change
        try:
            self._conninfo = make_conninfo(self._url, connect_timeout=max(1, int(connect_timeout_s)), application_name="faceapp")
        except psycopg.ProgrammingError as e:
            raise GalleryError(f"{self._path} is not a valid PostgreSQL URL ({one_line(e)})") from None
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as probe:
                _configure(probe)
                version = pg_schema.read_version(probe, self._path)
        except psycopg.Error as e:
            raise server_error(e, self._path) from None
        if version == 0 and (read_only or not create):
            raise GalleryError(f"no gallery at {self._path} (enroll someone first, or check the URL)")
        self._open_pool()
        try:
            if version < SCHEMA_VERSION:
                self._create_schema()
            with self._read(check_key=False) as conn:
                self._unlock(conn, passphrase)
                self._counters = {key: self._counter_in(conn, key) for key in _COUNTERS}
        except BaseException:
            self.close()
            raise
        self._listener = threading.Thread(target=self._listen, name="faceapp-gallery-listener", daemon=True)
        self._listener.start()

    def _open_pool(self) -> None:
        from psycopg_pool import ConnectionPool

        def configure(conn: Any) -> None:
            _configure(conn)

        self._pool = ConnectionPool(self._conninfo, min_size=1, max_size=4, kwargs={"autocommit": True},
                                    configure=configure, check=ConnectionPool.check_connection, open=False,
                                    name="faceapp-gallery", reconnect_timeout=0)
        self._pool.open(wait=False)

    def _create_schema(self) -> None:
        with self._write(check_key=False) as conn:
            if conn.raw.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
                conn.raw.execute("CREATE EXTENSION IF NOT EXISTS vector")
            pg_schema.migrate(conn, self._path)
        # New connections learn the vector type now that it exists.
        self._pool.close()
        self._open_pool()

    # ----- lifecycle

    @property
    def path(self) -> str:
        """The server URL, without its password."""
        return self._path

    @property
    def reopen_location(self) -> str:
        return self._url

    def close(self) -> None:
        """Close the connections and stop listening (idempotent)."""
        self._stop.set()
        if self._listener is not None and self._listener is not threading.current_thread():
            self._listener.join(timeout=3)
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    @staticmethod
    def is_encrypted_file(url: str) -> bool:
        """True if the gallery at ``url`` exists and is encrypted (reads only; False when
        it cannot be reached: opening it then gives the real error)."""
        import psycopg
        from psycopg.conninfo import make_conninfo

        try:
            with psycopg.connect(make_conninfo(str(url), connect_timeout=5), autocommit=True) as conn:
                if not pg_schema.schema_exists(conn):
                    return False
                row = conn.execute(f"SELECT text_value FROM {pg_schema.SCHEMA}.meta WHERE key = 'kdf'").fetchone()
                return row is not None and row[0] is not None
        except psycopg.Error:
            return False

    # ----- connection, with back-off

    @property
    def connection_problem(self) -> str | None:
        return self._problem

    def _set_problem(self, problem: str | None) -> None:
        if problem != self._problem:
            (logger.warning if problem else logger.info)("gallery %s: %s", self._path, problem or "connected again")
        self._problem = problem

    def _checkout(self) -> Any:
        """A live connection from the pool, retried with back-off for up to :attr:`retry_s`
        (once only while the server is known to be away: the status line says so, and
        no caller, the GUI's included, waits long for it)."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self._pool
        if pool is None:
            raise GalleryError(f"gallery {self._path} is closed")
        budget = self.retry_s if self._problem is None else 0.0
        deadline, delay = time.monotonic() + budget, 0.25
        while True:
            try:
                conn = pool.getconn(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
                if self._problem and self._listening.is_set():
                    self._set_problem(None)
                return conn
            except (PoolTimeout, psycopg.OperationalError) as e:
                reason = self._why_unreachable(e)
            left = deadline - time.monotonic()
            if left <= 0:
                self._set_problem(f"connection lost ({reason}); reconnecting")
                raise GalleryError(f"cannot reach the gallery server {self._path}: {reason} (tried for {self.retry_s:g} s)")
            self._set_problem(f"connection lost ({reason}); retrying in {min(delay, left):.1f} s")
            time.sleep(min(delay, left))
            delay = min(delay * 2, 8.0)

    def _why_unreachable(self, error: Exception) -> str:
        import psycopg
        from psycopg_pool import PoolTimeout

        if isinstance(error, psycopg.OperationalError) and not isinstance(error, PoolTimeout):
            return one_line(error)
        if self._last_error:  # what the listener last heard
            return self._last_error
        try:  # the pool only says it timed out: ask the server directly
            psycopg.connect(self._conninfo).close()
            return "the server is busy"
        except psycopg.Error as e:
            return one_line(e)

    # ----- transactions

    @contextmanager
    def _transaction(self, write: bool, check_key: bool, counter: str) -> Iterator[Connection]:
        import psycopg

        if self._current is not None and self._owner == threading.get_ident():
            yield self._current  # a nested read joins the thread's running transaction
            return
        raw = self._checkout()  # outside the lock: waiting for the server blocks no other thread
        with self._lock:
            try:
                conn = Connection(raw)
                try:
                    raw.execute("BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    if write:
                        raw.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                except psycopg.Error as e:
                    raise self._error(e, raw, write, committing=False) from None
                self._current, self._owner = conn, threading.get_ident()
                bumped = None
                try:
                    if check_key:
                        self._check_key_current(conn)
                    yield conn
                    if write:
                        bumped = self._bump(conn, counter)
                    raw.execute("COMMIT")
                except BaseException as e:
                    try:
                        raw.execute("ROLLBACK")
                    except psycopg.Error:
                        logger.debug("rollback failed", exc_info=True)
                    if isinstance(e, psycopg.Error):
                        raise self._error(e, raw, write, committing=bumped is not None) from None
                    raise
                finally:
                    self._current, self._owner = None, None
                if bumped is not None:
                    self._counters[counter] = max(bumped, self._counters.get(counter, 0))
            finally:
                if self._pool is not None:
                    self._pool.putconn(raw)

    def _error(self, error: Exception, raw: Any, write: bool, committing: bool) -> GalleryError:
        import psycopg

        state = getattr(error, "sqlstate", None) or ""
        lost = raw.broken or raw.closed or state.startswith(("08", "57P"))
        if isinstance(error, psycopg.OperationalError) and (lost or not state):
            self._set_problem(f"connection lost ({one_line(error)})")
            if committing:
                return GalleryError(f"lost the connection to the gallery server {self._path} while saving: the change "
                                    "may not have been saved; check, and do it again if it is missing")
            return GalleryError(f"lost the connection to the gallery server {self._path}"
                                + (": nothing was changed; try again" if write else "; try again"))
        return server_error(error, self._path)

    @contextmanager
    def _write(self, *, check_key: bool = True, counter: str = "revision") -> Iterator[Connection]:
        """One write transaction (writers of every desktop queue for the gallery's lock)
        that bumps ``counter`` and notifies the other desktops; rolled back on any error."""
        with self._transaction(True, check_key, counter) as conn:
            yield conn

    @contextmanager
    def _read(self, *, check_key: bool = True) -> Iterator[Connection]:
        """A consistent read snapshot."""
        with self._transaction(False, check_key, "") as conn:
            yield conn

    # ----- meta values and counters

    def _has_meta(self, conn: Connection) -> bool:
        return pg_schema.schema_exists(conn.raw)

    def _meta_get(self, conn: Connection, key: str) -> object:
        row = conn.raw.execute("SELECT int_value, real_value, text_value, blob_value FROM meta WHERE key = %s", (key,)).fetchone()
        if row is None:
            return None
        return next((value for value in row if value is not None), None)

    def _meta_set(self, conn: Connection, key: str, value: float | str | bytes | None) -> None:
        column = None if value is None else _META_COLUMNS.get(type(value))
        if value is not None and column is None:
            raise GalleryError(f"cannot store a {type(value).__name__} as the gallery's {key}")
        values = [value if column == c else None for c in ("int_value", "real_value", "text_value", "blob_value")]
        conn.raw.execute("INSERT INTO meta(key, int_value, real_value, text_value, blob_value) VALUES (%s, %s, %s, %s, %s) "
                         "ON CONFLICT (key) DO UPDATE SET int_value = excluded.int_value, real_value = excluded.real_value, "
                         "text_value = excluded.text_value, blob_value = excluded.blob_value", (key, *values))

    def _bump(self, conn: Connection, counter: str) -> int:
        row = conn.raw.execute("UPDATE meta SET int_value = COALESCE(int_value, 0) + 1 WHERE key = %s RETURNING int_value",
                               (counter,)).fetchone()
        value = 0 if row is None else int(row[0])
        conn.raw.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{counter} {value}"))
        return value

    def _counter_in(self, conn: Connection, key: str) -> int:
        value = self._meta_get(conn, key)
        return int(value) if isinstance(value, int) else 0

    def _peek_meta(self, key: str) -> object:
        """Counters come from the listener while it listens (no round trip); when the
        server cannot be reached, their last values (the live view goes on)."""
        if key in _COUNTERS and key in self._counters and (self._listening.is_set() or self._problem):
            return self._counters[key]
        try:
            with self._read(check_key=False) as conn:
                value = self._meta_get(conn, key)
        except GalleryError:
            if key in self._counters:
                return self._counters[key]
            raise
        if key in _COUNTERS and isinstance(value, int):
            self._counters[key] = value
        return value

    def _listen(self) -> None:
        """The listener thread: keeps the counters current from the notifications;
        reconnects with back-off, re-reading the counters it may have missed."""
        import psycopg

        delay = 0.25
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    _configure(conn)
                    conn.execute(f"LISTEN {CHANNEL}")
                    for key in _COUNTERS:
                        row = conn.execute("SELECT int_value FROM meta WHERE key = %s", (key,)).fetchone()
                        if row and row[0] is not None:
                            self._counters[key] = max(int(row[0]), self._counters.get(key, 0))
                    self._listening.set()
                    self._last_error = None
                    if self._problem:
                        self._set_problem(None)
                    delay = 0.25
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            key, _, value = note.payload.partition(" ")
                            if key in _COUNTERS and value.isdigit():
                                self._counters[key] = max(int(value), self._counters.get(key, 0))
                        conn.execute("SELECT 1")  # notices a dead connection between notifications
            except psycopg.Error as e:
                self._listening.clear()
                if self._stop.is_set():
                    return
                self._last_error = one_line(e)
                self._set_problem(f"connection lost ({one_line(e)}); reconnecting in {delay:.1f} s")
                self._stop.wait(delay)
                delay = min(delay * 2, 8.0)
        self._listening.clear()

    # ----- the server's copy of the embeddings

    def _templates_written(self, conn: Connection, rows: list[tuple[int, bytes]]) -> None:
        if not rows or self._key is not None:  # an encrypted gallery: the server sees sealed blobs only
            return
        dim = len(rows[0][1]) // 4
        retyped = pg_schema.ensure_vector_column(conn, dim)
        if retyped:
            rows = [(int(r[0]), self._open_blob(r[1], int(r[0]), "embedding"))
                    for r in conn.execute("SELECT id, embedding FROM templates WHERE dim = ?", (dim,)).fetchall()]
        with conn.raw.cursor() as cursor:
            cursor.executemany("UPDATE templates SET vec = %s WHERE id = %s",
                               [(np.frombuffer(blob, "<f4").astype(np.float32), tid) for tid, blob in rows])
        pg_schema.ensure_vector_index(conn)

    def _rekeyed(self, conn: Connection, encrypted: bool) -> None:
        if encrypted:
            conn.execute("UPDATE templates SET vec = NULL WHERE vec IS NOT NULL")
            return
        rows = conn.execute("SELECT id, embedding FROM templates").fetchall()
        self._templates_written(conn, [(int(r[0]), bytes(r[1])) for r in rows])

    def wipe_free_space(self) -> bool:
        """Nothing to do here: the server reclaims deleted rows (autovacuum)."""
        return True

    def nearest_templates(self, queries: np.ndarray, k: int = 10, ef_search: int = 100) -> list[list[tuple[int, str, float]]]:
        """For each query (float32 ``(Q, D)`` unit rows), the ``k`` most similar positive
        templates by the server's HNSW index: ``(template id, name, cosine similarity)``,
        best first. GalleryError for an encrypted gallery (the server cannot see its
        embeddings: match on the client)."""
        if self._key is not None:
            raise GalleryError(f"gallery {self._path} is encrypted: the server cannot search it (matching is done here)")
        queries = np.asarray(queries, np.float32)
        out = []
        with self._read() as conn:
            conn.raw.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
            for query in queries:
                rows = conn.raw.execute(
                    "SELECT t.id, p.name, 1 - (t.vec <=> %s) FROM templates t JOIN people p ON p.id = t.person_id "
                    "WHERE t.kind = 'positive' ORDER BY t.vec <=> %s LIMIT %s", (query, query, int(k))).fetchall()
                out.append([(int(r[0]), str(r[1]), float(r[2])) for r in rows])
        return out


class PostgresGallery(Gallery, PostgresDatabase):
    """A gallery on a PostgreSQL server (see :mod:`faceapp.storage.postgres`)."""
