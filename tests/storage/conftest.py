"""Fixtures of the storage tests: an empty gallery and one with three people."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceapp.storage.gallery import Gallery

from .gallery_data import JPEG, PNG, tmpl


@pytest.fixture
def gallery(tmp_path: Path):
    with Gallery(tmp_path / "g.db") as g:
        yield g


@pytest.fixture
def filled(gallery: Gallery) -> Gallery:
    gallery.add_person("Bob", [tmpl(thumbnail=PNG, source="bob1.jpg", quality=0.5), tmpl(source="webcam")])
    gallery.add_person("alice", [tmpl(thumbnail=JPEG, source="a.png")])
    gallery.add_person("Carol", [tmpl(), tmpl(), tmpl(thumbnail=PNG)])
    return gallery


