"""Fixtures of the storage tests: an empty gallery and one with three people, on each
engine (a file, and a PostgreSQL server): the same operations must behave the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceapp.storage.gallery import Gallery

from .gallery_data import JPEG, PNG, tmpl


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request) -> str:
    return request.param


@pytest.fixture
def gallery_location(engine, tmp_path: Path, request):
    """Where a new gallery goes on ``engine``."""
    if engine == "sqlite":
        return tmp_path / "g.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def gallery(gallery_location):
    with Gallery(gallery_location) as g:
        yield g


@pytest.fixture
def filled(gallery: Gallery) -> Gallery:
    gallery.add_person("Bob", [tmpl(thumbnail=PNG, source="bob1.jpg", quality=0.5), tmpl(source="webcam")])
    gallery.add_person("alice", [tmpl(thumbnail=JPEG, source="a.png")])
    gallery.add_person("Carol", [tmpl(), tmpl(), tmpl(thumbnail=PNG)])
    return gallery
