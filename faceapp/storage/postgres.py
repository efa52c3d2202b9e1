"""A gallery on a PostgreSQL server with pgvector, shared by several desktops.

``Gallery("postgresql://USER@HOST/DB")`` gives the same operations as a gallery file
(the SQL is shared, :mod:`faceapp.storage.pg_sql`; the schema is
:mod:`faceapp.storage.pg_schema`). What the server changes:

* Writers: every change is one transaction that first takes the gallery's advisory
  lock, so writers from any number of desktops queue instead of losing each other's
  changes (the file's ``BEGIN IMMEDIATE``; waiting more than :data:`LOCK_WAIT_S` is
  "busy, try again"); readers see one snapshot (REPEATABLE READ). Each transaction has
  a pooled connection of its own: a thread waiting for the server or for another
  desktop's writer blocks no other thread of this desktop.
* Changes reach the other desktops by LISTEN/NOTIFY (:mod:`faceapp.storage.pg_listener`):
  :meth:`revision`, polled every frame by the live view, costs no round trip, and a new
  enrollment reaches every desktop within a second.
* A dropped connection is retried with back-off (0.25 s doubling to 8 s, for up to
  :attr:`retry_s` per operation); meanwhile :attr:`connection_problem` says so (the
  status line shows it) and the counters keep their last values, so a live view goes on
  with the gallery it has.
* Plaintext templates are also kept as ``vector(D)`` with an HNSW index (cosine) for
  :meth:`nearest_templates`; an encrypted gallery keeps only sealed blobs, which the
  server cannot index: it is matched on the client.
* A role that may not write the gallery opens it read-only, as a read-only file does.
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
from faceapp.storage.locations import redacted, scrub
from faceapp.storage.pg_listener import CHANNEL, COUNTERS, STALE_S, Listener
from faceapp.storage.pg_sql import Connection, server_error
from faceapp.storage.schema import SCHEMA_VERSION, one_line

logger = logging.getLogger(__name__)
# The pool logs every failed reconnection; the gallery says it once per change (connection_problem).
logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)

LOCK_KEY = 0x46616365  # "Face": the gallery's writer lock (advisory locks are per database)
LOCK_WAIT_S = 30
#: Dead TCP peers are noticed by the kernel within about 20 s (ignored on Unix sockets).
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 2,
               "tcp_user_timeout": 20_000}
_META_COLUMNS = {int: "int_value", bool: "int_value", float: "real_value", str: "text_value", bytes: "blob_value"}


def _configure(conn: Any) -> None:
    """Every connection: the gallery's schema first on the search path, vectors as numpy."""
    conn.execute("SELECT set_config('search_path', %s || current_setting('search_path'), false)", (f"{pg_schema.SCHEMA}, ",))
    if conn.execute("SELECT 1 FROM pg_type WHERE typname = 'vector'").fetchone():
        from pgvector.psycopg import register_vector

        register_vector(conn)


def conninfo_for(url: str, connect_timeout_s: float = 5.0) -> str:
    """libpq's connection string for ``url``; GalleryError (the password never shown)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    scheme, sep, rest = str(url).partition("://")
    try:
        return make_conninfo(scheme.lower() + sep + rest, connect_timeout=max(1, int(connect_timeout_s)),
                             application_name="faceapp", **_KEEPALIVES)
    except psycopg.ProgrammingError:
        raise GalleryError(f"{redacted(url)} is not a valid PostgreSQL URL "
                           "(postgresql://USER@HOST[:PORT]/DATABASE, with special characters %-encoded)") from None


class PostgresDatabase(BaseDatabase):
    """A gallery's connection to a PostgreSQL server (see the module docstring).
    Usable from several threads, each transaction on a connection of its own."""

    def __init__(self, url: str, *, passphrase: str | None = None, read_only: bool = False, create: bool = True,
                 busy_timeout_ms: int | None = None, connect_timeout_s: float = 5.0, retry_s: float = 10.0) -> None:
        import psycopg

        self._url = str(url)
        self._path = redacted(self._url)
        self._lock = threading.RLock()  # encryption changes; transactions need none (one connection each)
        self._local = threading.local()  # the thread's running transaction
        self._problem: str | None = None
        self._pool = None
        self._full_vacuum = False
        self.retry_s = float(retry_s)
        self._conninfo = conninfo_for(self._url, connect_timeout_s)
        self._listener = Listener(self._listener_connection, self._set_problem)
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as probe:
                _configure(probe)
                version = pg_schema.read_version(probe, self._path)
        except psycopg.Error as e:
            raise self._scrubbed(server_error(e, self._path)) from None
        if version == 0 and (read_only or not create):
            raise GalleryError(f"no gallery at {self._path} (enroll someone first, or check the URL)")
        self._open_pool()
        try:
            if version < SCHEMA_VERSION:
                self._create_schema()
            with self._read(check_key=False) as conn:
                self._unlock(conn, passphrase)
                self._listener.counters.update({key: self._counter_in(conn, key) for key in COUNTERS})
                writable = conn.raw.execute("SELECT has_table_privilege('templates', 'INSERT') AND "
                                            "has_table_privilege('sightings', 'INSERT')").fetchone()[0]
            self.read_only = not writable
        except BaseException:
            self.close()
            raise
        self._listener.start()

    def _listener_connection(self) -> Any:
        import psycopg

        conn = psycopg.connect(self._conninfo, autocommit=True)
        _configure(conn)
        return conn

    def _open_pool(self) -> None:
        from psycopg_pool import ConnectionPool

        self._pool = ConnectionPool(self._conninfo, min_size=1, max_size=4, kwargs={"autocommit": True},
                                    configure=_configure, check=ConnectionPool.check_connection, open=False,
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

    def _scrubbed(self, error: GalleryError) -> GalleryError:
        return type(error)(scrub(str(error), self._url))

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
        self._listener.stop()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @staticmethod
    def is_encrypted_file(url: str) -> bool:
        """True if the gallery at ``url`` exists and is encrypted (reads only; False when
        it cannot be reached: opening it then gives the real error)."""
        import psycopg

        try:
            with psycopg.connect(conninfo_for(url), autocommit=True) as conn:
                if not pg_schema.schema_exists(conn):
                    return False
                row = conn.execute(f"SELECT text_value FROM {pg_schema.SCHEMA}.meta WHERE key = 'kdf'").fetchone()
                return row is not None and row[0] is not None
        except (psycopg.Error, GalleryError):
            return False

    # ----- connection, with back-off

    @property
    def connection_problem(self) -> str | None:
        silent = self._listener.silent_s
        if self._problem is None and silent > STALE_S:
            return f"the server has not answered for {silent:.0f} s"
        return self._problem

    def _set_problem(self, problem: str | None) -> None:
        if (problem is None) != (self._problem is None):  # once per outage, not per retry
            logger.info("gallery %s: %s", self._path, problem or "connected again")
        self._problem = None if problem is None else scrub(problem, self._url)

    def _checkout(self) -> Any:
        """A live connection from the pool, retried with back-off for up to :attr:`retry_s`."""
        import psycopg
        from psycopg_pool import PoolClosed, PoolTimeout

        began = time.monotonic()
        deadline, delay = began + self.retry_s, 0.25
        while True:
            pool = self._pool
            if pool is None:
                raise GalleryError(f"gallery {self._path} is closed")
            try:
                conn = pool.getconn(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
                if self._problem and self._listener.listening.is_set():
                    self._set_problem(None)
                return conn
            except PoolClosed:
                raise GalleryError(f"gallery {self._path} is closed") from None
            except (PoolTimeout, psycopg.OperationalError) as e:
                reason = self._why_unreachable(e)
            left = deadline - time.monotonic()
            if left <= 0:
                self._set_problem(f"connection lost ({reason}); reconnecting")
                raise GalleryError(scrub(f"cannot reach the gallery server {self._path}: {reason} "
                                         f"(tried for {time.monotonic() - began:.0f} s)", self._url))
            self._set_problem(f"connection lost ({reason}); retrying")
            time.sleep(min(delay, left))
            delay = min(delay * 2, 8.0)

    def _why_unreachable(self, error: Exception) -> str:
        import psycopg
        from psycopg_pool import PoolTimeout

        if isinstance(error, psycopg.OperationalError) and not isinstance(error, PoolTimeout):
            return one_line(error)
        if self._listener.last_error:  # what the listener last heard
            return self._listener.last_error
        try:  # the pool only says it timed out: ask the server directly
            psycopg.connect(self._conninfo).close()
            return "the server is busy"
        except psycopg.Error as e:
            return one_line(e)

    # ----- transactions

    @contextmanager
    def _transaction(self, write: bool, check_key: bool, counter: str) -> Iterator[Connection]:
        import psycopg

        running = getattr(self._local, "conn", None)
        if running is not None:
            yield running  # a nested read joins the thread's running transaction
            return
        if write and self.read_only:
            raise GalleryError(f"gallery {self._path}: permission denied: this role may only read it, so it cannot "
                               "be changed (the README lists the rights a role needs)")
        raw = self._checkout()
        conn = Connection(raw)
        try:
            try:
                if write:
                    raw.execute("BEGIN")
                    raw.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'")
                    raw.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                else:
                    raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            except psycopg.Error as e:
                raise self._error(e, raw, write, committing=False) from None
            self._local.conn, self._local.bumped = conn, {}
            committing = False
            try:
                if check_key:
                    self._check_key_current(conn)
                yield conn
                if write:
                    self._bump(conn, counter)
                committing = True
                raw.execute("COMMIT")
            except BaseException as e:
                try:
                    raw.execute("ROLLBACK")
                except psycopg.Error:
                    logger.debug("rollback failed", exc_info=True)
                if isinstance(e, psycopg.Error):
                    raise self._error(e, raw, write, committing) from None
                raise
            finally:
                bumped, self._local.conn, self._local.bumped = self._local.bumped, None, None
            self._listener.counters.update(bumped)  # ours now; the others' come by notification
        finally:
            pool = self._pool
            if pool is not None:
                pool.putconn(raw)
            else:
                raw.close()

    def _error(self, error: Exception, raw: Any, write: bool, committing: bool) -> GalleryError:
        import psycopg

        state = getattr(error, "sqlstate", None) or ""
        lost = raw.broken or raw.closed or state.startswith(("08", "57P"))
        if isinstance(error, psycopg.OperationalError) and (lost or not state):
            self._set_problem(f"connection lost ({one_line(error)}); reconnecting")
            if committing:
                return GalleryError(f"lost the connection to the gallery server {self._path} while saving: the change "
                                    "may not have been saved; check, and do it again if it is missing")
            return GalleryError(f"lost the connection to the gallery server {self._path}"
                                + (": nothing was changed; try again" if write else "; try again"))
        return self._scrubbed(server_error(error, self._path))

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
        bumped = getattr(self._local, "bumped", None)
        if bumped is not None:
            bumped[counter] = value
        return value

    def _counter_in(self, conn: Connection, key: str) -> int:
        value = self._meta_get(conn, key)
        return int(value) if isinstance(value, int) else 0

    def _peek_meta(self, key: str) -> object:
        """Counters come from the listener while it listens (no round trip); when the
        server cannot be reached, their last values (the live view goes on)."""
        counters = self._listener.counters
        if key in COUNTERS and key in counters and (self._listener.listening.is_set() or self._problem):
            return counters[key]
        try:
            with self._read(check_key=False) as conn:
                value = self._meta_get(conn, key)
        except GalleryError:
            if key in counters:
                return counters[key]
            raise
        if key in COUNTERS and isinstance(value, int):
            counters[key] = value
        return value

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
        if encrypted:  # no plaintext vector left in the table or its index
            conn.execute(f"DROP INDEX IF EXISTS {pg_schema.VECTOR_INDEX}")
            conn.execute("UPDATE templates SET vec = NULL WHERE vec IS NOT NULL")
            self._full_vacuum = True
            return
        rows = conn.execute("SELECT id, embedding FROM templates").fetchall()
        self._templates_written(conn, [(int(r[0]), bytes(r[1])) for r in rows])

    def wipe_free_space(self) -> bool:
        """After encryption, rewrite the tables (VACUUM FULL), so the plaintext row versions
        are gone from the database's files (not from its write-ahead log or backups: the
        README says so). After a removal nothing: the server reclaims deleted rows itself
        (autovacuum; a plain VACUUM would not erase them either). Best effort: False, with
        a warning, when the role may not (only a table's owner may)."""
        import psycopg

        full, self._full_vacuum = self._full_vacuum, False
        if not full:
            return True
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as conn:
                _configure(conn)
                conn.execute("VACUUM FULL templates, sightings")
        except psycopg.Error as e:
            logger.warning("gallery %s: the server did not vacuum it (%s)", self._path, scrub(one_line(e), self._url))
            return False
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

