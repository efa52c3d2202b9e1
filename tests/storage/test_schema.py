"""Tests for opening gallery files: damaged, foreign, newer or busy files are refused; pragmas and meta (synthetic unit vectors, no models)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from faceapp.errors import (
    GalleryError,
)
from faceapp.storage.gallery import SCHEMA_VERSION, Gallery

from .gallery_data import PNG, tmpl

# --------------------------------------------------------------------------- bad files


def _assert_refused(path: Path, match: str | None = None) -> None:
    before = path.read_bytes()
    with pytest.raises(GalleryError, match=match) as info:
        Gallery(path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before


def test_random_bytes_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    path.write_bytes(np.random.default_rng(0).bytes(8192))
    _assert_refused(path, "not")


def test_text_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, I am not a database\n")
    _assert_refused(path)


def _real_gallery(path: Path) -> None:
    with Gallery(path) as g:
        for i in range(40):
            g.add_person(f"P{i}", [tmpl(thumbnail=PNG + bytes(3000)) for _ in range(3)])


@pytest.mark.parametrize("keep", [50, 100, 4096, 0.5, -4096, -1])
def test_truncated_gallery_refused(tmp_path: Path, keep: float) -> None:
    path = tmp_path / "g.db"
    _real_gallery(path)
    data = path.read_bytes()
    assert len(data) > 5 * 4096
    cut = int(len(data) * keep) if isinstance(keep, float) else keep if keep > 0 else len(data) + keep
    path.write_bytes(data[:cut])
    _assert_refused(path)


def test_corrupt_pages_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    _real_gallery(path)
    data = bytearray(path.read_bytes())
    data[8192 : 8192 + 4096] = np.random.default_rng(0).bytes(4096)
    path.write_bytes(bytes(data))
    _assert_refused(path, "corrupt|not a valid")


def test_foreign_sqlite_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT)")
    conn.commit()
    conn.close()
    _assert_refused(path, "not a FaceApp gallery")


def test_wrong_schema_with_meta_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    _assert_refused(path, "not a FaceApp gallery")


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.add_person("A", [tmpl()])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    _assert_refused(path, "newer")


def test_empty_file_becomes_gallery(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    path.write_bytes(b"")
    with Gallery(path) as g:
        g.add_person("A", [tmpl()])
    with Gallery(path) as g:
        assert g.person("A").template_count == 1


def test_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(GalleryError):
        Gallery(tmp_path)


def test_meta_and_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    Gallery(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    with Gallery(path) as g:
        assert g._conn is not None
        assert g._conn.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_busy_gallery(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    Gallery(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO people(name, created_at) VALUES ('locker', 0)")
    try:
        with Gallery(path, busy_timeout_ms=100) as g:
            t0 = time.monotonic()
            with pytest.raises(GalleryError, match="busy") as info:
                g.add_person("A", [tmpl()])
            assert time.monotonic() - t0 < 5
            assert "another process" in str(info.value)
            assert g.people() == []  # readers are not blocked (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    with Gallery(path) as g:
        g.add_person("A", [tmpl()])
        assert [p.name for p in g.people()] == ["A"]


