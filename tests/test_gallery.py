"""Tests for faceapp.storage.gallery and faceapp.storage.archive (synthetic unit vectors, no models)."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from faceapp.errors import (
    FaceAppError,
    GalleryError,
    ModelMismatchError,
    UnknownPersonError,
)
from faceapp.storage import archive
from faceapp.storage.archive import ImportSummary, export_gallery, import_gallery
from faceapp.storage.gallery import SCHEMA_VERSION, Gallery, GalleryMatrix, NewTemplate

REPO = Path(__file__).resolve().parents[1]
DIM = 8
MODEL = "sface-test"
PNG = b"\x89PNG\r\n\x1a\n" + b"fake png payload"
JPEG = b"\xff\xd8\xff\xe0" + b"fake jpeg payload"

_rng = np.random.default_rng(1234)


def unit(dim: int = DIM) -> np.ndarray:
    v = _rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def tmpl(model: str = MODEL, dim: int = DIM, **kw) -> NewTemplate:
    return NewTemplate(embedding=unit(dim), model_id=model, **kw)


def state(g: Gallery) -> tuple:
    """Everything observable about a gallery, for before/after comparisons."""
    people, templates = g.snapshot()
    return (
        tuple(people),
        tuple(
            (
                t.id,
                t.person_id,
                t.embedding.tobytes(),
                t.model_id,
                t.quality,
                t.thumbnail,
                t.source,
                t.created_at,
            )
            for t in templates
        ),
        g.revision(),
    )


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


# --------------------------------------------------------------------------- basics


def test_create_add_list(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "g.db"
    with Gallery(path) as g:
        assert g.path == path and path.is_file()
        assert g.people() == []
        p = g.add_person("  Zoe  ", [tmpl(), tmpl()])
        assert (p.name, p.template_count) == ("Zoe", 2)
        g.add_person("adam", [tmpl()])
        assert [x.name for x in g.people()] == ["adam", "Zoe"]
        assert g.person("Zoe") == p
        assert g.person(" Zoe ") == p
        p2 = g.add_templates("Zoe", [tmpl()])
        assert p2.template_count == 3 and p2.id == p.id
        assert len(g.templates("Zoe")) == 3
        assert len(g.templates()) == 4
        assert g.model_id() == MODEL


def test_template_fields_round_trip(gallery: Gallery) -> None:
    v = unit()
    gallery.add_person("A", [NewTemplate(v, MODEL, quality=0.25, thumbnail=PNG, source="x.jpg")])
    (t,) = gallery.templates("A")
    assert t.embedding.dtype == np.float32 and t.embedding.shape == (DIM,)
    assert t.embedding.tobytes() == v.tobytes()
    assert (t.model_id, t.quality, t.thumbnail, t.source) == (MODEL, 0.25, PNG, "x.jpg")
    assert t.person_id == gallery.person("A").id
    assert abs(t.created_at - time.time()) < 60


def test_float64_embedding_stored_as_float32(gallery: Gallery) -> None:
    v = unit().astype(np.float64)
    gallery.add_person("A", [NewTemplate(v, MODEL)])
    (t,) = gallery.templates("A")
    assert t.embedding.dtype == np.float32
    np.testing.assert_array_equal(t.embedding, v.astype(np.float32))


def test_persistence_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.add_person("A", [tmpl(thumbnail=PNG)])
        before = state(g)
    with Gallery(path) as g:
        assert state(g) == before
        g.add_person("B", [tmpl()])  # not yet checkpointed into the main file
        with Gallery(path) as g2:
            assert [p.name for p in g2.people()] == ["A", "B"]


def test_persistence_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    writer = textwrap.dedent(
        f"""
        import numpy as np
        from faceapp.storage.gallery import Gallery, NewTemplate
        v = np.zeros({DIM}, np.float32); v[0] = 1.0
        with Gallery({str(path)!r}) as g:
            g.add_person("Written Elsewhere", [NewTemplate(v, {MODEL!r}, quality=0.75, source="proc")])
        """
    )
    subprocess.run([sys.executable, "-c", writer], check=True, env=env, cwd=REPO, timeout=60)
    reader = textwrap.dedent(
        f"""
        from faceapp.storage.gallery import Gallery
        with Gallery({str(path)!r}) as g:
            (p,) = g.people()
            (t,) = g.templates()
            print(p.name, p.template_count, t.quality, t.source, t.embedding.tolist())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", reader],
        check=True,
        env=env,
        cwd=REPO,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip() == f"Written Elsewhere 1 0.75 proc {[1.0] + [0.0] * (DIM - 1)}"
    with Gallery(path) as g:
        assert g.person("Written Elsewhere").template_count == 1


def test_revision_seen_by_other_connection(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    with Gallery(path) as a, Gallery(path) as b:
        r = b.revision()
        a.add_person("A", [tmpl()])
        assert b.revision() != r
        assert [p.name for p in b.people()] == ["A"]


def test_revision_changes_after_each_write(gallery: Gallery) -> None:
    seen = [gallery.revision()]

    def bumped() -> None:
        r = gallery.revision()
        assert r not in seen
        seen.append(r)

    gallery.add_person("A", [tmpl()])
    bumped()
    gallery.add_person("B", [tmpl()])
    bumped()
    gallery.add_templates("A", [tmpl()])
    bumped()
    gallery.rename("A", "A2")
    bumped()
    gallery.merge("B", "A2")
    bumped()
    gallery.remove_template(gallery.templates("A2")[0].id)
    bumped()
    gallery.remove("A2")
    bumped()
    with pytest.raises(GalleryError):
        gallery.remove("nobody")
    assert gallery.revision() == seen[-1]  # a failed change bumps nothing


# --------------------------------------------------------------------------- edits


def test_rename(filled: Gallery) -> None:
    before = filled.person("Bob")
    p = filled.rename("Bob", "  Robert ")
    assert (p.id, p.name, p.template_count) == (before.id, "Robert", 2)
    with pytest.raises(UnknownPersonError):
        filled.person("Bob")
    with pytest.raises(GalleryError, match="already"):
        filled.rename("Robert", "alice")
    with pytest.raises(UnknownPersonError):
        filled.rename("nobody", "x")
    with pytest.raises(GalleryError):
        filled.rename("Robert", "   ")
    assert filled.rename("Robert", "robert").name == "robert"  # case change is allowed


def test_merge(filled: Gallery) -> None:
    src_ids = {t.id for t in filled.templates("Bob")}
    p = filled.merge("Bob", "Carol")
    assert (p.name, p.template_count) == ("Carol", 5)
    assert src_ids <= {t.id for t in filled.templates("Carol")}
    assert "Bob" not in [x.name for x in filled.people()]
    with pytest.raises(GalleryError, match="itself"):
        filled.merge("Carol", "Carol")
    with pytest.raises(UnknownPersonError):
        filled.merge("Bob", "Carol")
    with pytest.raises(UnknownPersonError):
        filled.merge("Carol", "Bob")


def test_remove_and_remove_template(filled: Gallery) -> None:
    filled.remove("Carol")
    assert [p.name for p in filled.people()] == ["alice", "Bob"]
    assert len(filled.templates()) == 3  # cascade
    (t,) = filled.templates("alice")
    filled.remove_template(t.id)
    assert filled.person("alice").template_count == 0  # the person stays
    assert filled.templates("alice") == []
    with pytest.raises(GalleryError, match="no template"):
        filled.remove_template(t.id)
    with pytest.raises(UnknownPersonError):
        filled.remove("Carol")


def test_unknown_names(gallery: Gallery) -> None:
    gallery.add_person("A", [tmpl()])
    for call in (
        lambda: gallery.person("X"),
        lambda: gallery.templates("X"),
        lambda: gallery.add_templates("X", [tmpl()]),
        lambda: gallery.remove("X"),
        lambda: gallery.rename("X", "Y"),
    ):
        with pytest.raises(UnknownPersonError, match="no person named 'X' in the gallery"):
            call()


def test_duplicate_name(gallery: Gallery) -> None:
    gallery.add_person("A", [tmpl()])
    before = state(gallery)
    with pytest.raises(GalleryError, match="already"):
        gallery.add_person(" A ", [tmpl()])
    assert state(gallery) == before


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "a\nb", "tab\there", "nul\x00", "bell\x07", 42, None])
def test_bad_names(gallery: Gallery, name: object) -> None:
    with pytest.raises(GalleryError) as info:
        gallery.add_person(name, [tmpl()])  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert gallery.people() == []


def test_long_and_unicode_names_ok(gallery: Gallery) -> None:
    gallery.add_person("x" * 100, [tmpl()])
    gallery.add_person("Zoë O'Brien-李", [tmpl()])
    assert len(gallery.people()) == 2


def test_empty_templates_refused(gallery: Gallery) -> None:
    with pytest.raises(GalleryError):
        gallery.add_person("A", [])
    assert gallery.people() == []


@pytest.mark.parametrize(
    "embedding",
    [
        np.array([np.nan] + [0.1] * (DIM - 1), np.float32),
        np.array([np.inf] + [0.1] * (DIM - 1), np.float32),
        np.array([1e300] + [0.1] * (DIM - 1), np.float64),  # overflows float32
        np.zeros((2, DIM), np.float32),
        np.zeros((0,), np.float32),
        np.zeros(DIM, np.float32),
        np.ones(DIM, np.int32),
        [0.5] * DIM,
    ],
    ids=["nan", "inf", "overflow", "2d", "empty", "zero", "int", "list"],
)
def test_bad_embedding_rejected_nothing_written(filled: Gallery, embedding) -> None:
    before = state(filled)
    with pytest.raises(GalleryError):
        filled.add_person("New", [tmpl(), NewTemplate(embedding, MODEL)])
    with pytest.raises(GalleryError):
        filled.add_templates("Bob", [tmpl(), NewTemplate(embedding, MODEL)])
    assert state(filled) == before


@pytest.mark.parametrize(
    "kw",
    [{"quality": float("nan")}, {"thumbnail": b"GIF89a..."}, {"thumbnail": "str"}, {"source": None}],
    ids=["nan-quality", "gif-thumb", "str-thumb", "none-source"],
)
def test_bad_template_fields(gallery: Gallery, kw: dict) -> None:
    with pytest.raises(GalleryError):
        gallery.add_person("A", [tmpl(**kw)])
    assert gallery.people() == []


def test_dimension_mismatch(filled: Gallery) -> None:
    before = state(filled)
    with pytest.raises(GalleryError, match="dimension"):
        filled.add_person("New", [tmpl(dim=DIM + 1)])
    with pytest.raises(GalleryError, match="dimension"):
        filled.add_person("New", [tmpl(), tmpl(dim=DIM + 1)])
    assert state(filled) == before


def test_model_mismatch_nothing_written(filled: Gallery) -> None:
    before = state(filled)
    with pytest.raises(ModelMismatchError, match="other-model") as info:
        filled.add_person("New", [tmpl(model="other-model")])
    assert MODEL in str(info.value)
    with pytest.raises(ModelMismatchError):
        filled.add_templates("Bob", [tmpl(model="other-model")])
    with pytest.raises(ModelMismatchError):
        filled.add_person("New", [tmpl(), tmpl(model="other-model")])
    assert state(filled) == before


def test_failure_mid_transaction_rolls_back(filled: Gallery, monkeypatch: pytest.MonkeyPatch) -> None:
    before = state(filled)

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Gallery, "_insert", boom)
    with pytest.raises(RuntimeError):
        filled.add_person("Half", [tmpl()])
    monkeypatch.undo()
    assert state(filled) == before


def test_closed_gallery(tmp_path: Path) -> None:
    g = Gallery(tmp_path / "g.db")
    g.close()
    g.close()
    with pytest.raises(GalleryError, match="closed"):
        g.people()


def test_thread_use(gallery: Gallery) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            gallery.add_person(f"T{i}", [tmpl()])
            gallery.people()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(gallery.people()) == 8


# --------------------------------------------------------------------------- matrix


def test_matrix_shape_and_order(filled: Gallery) -> None:
    m = filled.matrix(MODEL)
    assert isinstance(m, GalleryMatrix)
    assert m.names == ("alice", "Bob", "Carol")
    assert m.model_id == MODEL
    assert m.embeddings.dtype == np.float32 and m.embeddings.shape == (6, DIM)
    assert m.person_index.dtype == np.int64 and m.person_index.shape == (6,)
    assert m.person_index.tolist() == [0, 1, 1, 2, 2, 2]
    for i, name in enumerate(m.names):
        expected = np.stack([t.embedding for t in filled.templates(name)])
        np.testing.assert_array_equal(m.embeddings[m.person_index == i], expected)


def test_matrix_skips_people_without_templates(filled: Gallery) -> None:
    filled.remove_template(filled.templates("alice")[0].id)
    m = filled.matrix(MODEL)
    assert m.names == ("Bob", "Carol")
    assert m.person_index.tolist() == [0, 0, 1, 1, 1]


def test_matrix_empty(gallery: Gallery) -> None:
    m = gallery.matrix(MODEL)
    assert m.embeddings.shape[0] == 0 and m.person_index.shape == (0,) and m.names == ()
    assert m.model_id is None


def test_matrix_model_mismatch(filled: Gallery) -> None:
    with pytest.raises(ModelMismatchError) as info:
        filled.matrix("other-model")
    msg = str(info.value)
    assert "other-model" in msg and MODEL in msg and "re-enroll" in msg and "\n" not in msg


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


# --------------------------------------------------------------------------- archive


def test_export_import_round_trip(filled: Gallery, tmp_path: Path) -> None:
    filled.remove_template(filled.templates("alice")[0].id)  # a person with 0 templates
    out = tmp_path / "out" / "export.zip"
    assert export_gallery(filled, out) == out
    assert [p.name for p in out.parent.iterdir()] == ["export.zip"]  # no temp file left
    with Gallery(tmp_path / "new.db") as g2:
        summary = import_gallery(g2, out)
        assert summary == ImportSummary(people_added=3, people_merged=0, people_skipped=0, templates_added=5)
        src_people, dst_people = filled.people(), g2.people()
        assert [(p.name, p.created_at, p.template_count) for p in src_people] == [
            (p.name, p.created_at, p.template_count) for p in dst_people
        ]
        for p in src_people:
            a, b = filled.templates(p.name), g2.templates(p.name)
            assert [
                (t.embedding.tobytes(), t.model_id, t.quality, t.thumbnail, t.source, t.created_at) for t in a
            ] == [
                (t.embedding.tobytes(), t.model_id, t.quality, t.thumbnail, t.source, t.created_at) for t in b
            ]
        np.testing.assert_array_equal(filled.matrix(MODEL).embeddings, g2.matrix(MODEL).embeddings)


def test_manifest_contents(filled: Gallery, tmp_path: Path) -> None:
    out = export_gallery(filled, tmp_path / "e.zip")
    with zipfile.ZipFile(out) as zf:
        m = json.loads(zf.read("manifest.json"))
        assert (m["format"], m["version"], m["model_id"], m["dim"]) == ("faceapp-gallery", 1, MODEL, DIM)
        assert [p["name"] for p in m["people"]] == ["alice", "Bob", "Carol"]
        bob = m["people"][1]["templates"]
        assert bob[0]["thumbnail"].endswith(".png") and bob[1]["thumbnail"] is None
        assert m["people"][0]["templates"][0]["thumbnail"].endswith(".jpg")
        arr = np.load(io.BytesIO(zf.read(bob[0]["embedding_file"])), allow_pickle=False)
        assert arr.dtype == np.float32 and arr.shape == (2, DIM)


def test_export_empty_gallery(gallery: Gallery, tmp_path: Path) -> None:
    out = export_gallery(gallery, tmp_path / "e.zip")
    with Gallery(tmp_path / "new.db") as g2:
        assert import_gallery(g2, out) == ImportSummary(0, 0, 0, 0)
        assert g2.people() == []


def test_failed_export_leaves_no_file(
    filled: Gallery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(GalleryError, match="No space"):
        export_gallery(filled, tmp_path / "e.zip")
    assert not (tmp_path / "e.zip").exists()
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_failed_export_keeps_previous_file(
    filled: Gallery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = export_gallery(filled, tmp_path / "e.zip")
    old = out.read_bytes()
    filled.add_person("Newcomer", [tmpl()])

    def boom(*a, **k):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(GalleryError, match="cannot write"):
        export_gallery(filled, out)
    assert out.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("g.db")) == ["e.zip"]


def test_import_on_conflict(filled: Gallery, tmp_path: Path) -> None:
    out = export_gallery(filled, tmp_path / "e.zip")
    with Gallery(tmp_path / "other.db") as g2:
        g2.add_person("Bob", [tmpl()])
        g2.add_person("Dave", [tmpl()])
        before = state(g2)
        with pytest.raises(GalleryError, match="Bob"):
            import_gallery(g2, out)
        with pytest.raises(GalleryError, match="Bob"):
            import_gallery(g2, out, on_conflict="error")
        assert state(g2) == before

        s = import_gallery(g2, out, on_conflict="skip")
        assert s == ImportSummary(people_added=2, people_merged=0, people_skipped=1, templates_added=4)
        assert g2.person("Bob").template_count == 1
        assert [p.name for p in g2.people()] == ["alice", "Bob", "Carol", "Dave"]

        s = import_gallery(g2, out, on_conflict="merge")  # templates already there are not duplicated
        assert s == ImportSummary(people_added=0, people_merged=3, people_skipped=0, templates_added=2)
        assert g2.person("Bob").template_count == 3
        assert g2.person("Carol").template_count == 3
        with pytest.raises(GalleryError):
            import_gallery(g2, out, on_conflict="overwrite")  # type: ignore[arg-type]


def test_import_model_mismatch(filled: Gallery, tmp_path: Path) -> None:
    out = export_gallery(filled, tmp_path / "e.zip")
    with Gallery(tmp_path / "other.db") as g2:
        g2.add_person("Zed", [tmpl(model="other-model")])
        before = state(g2)
        with pytest.raises(ModelMismatchError, match="other-model"):
            import_gallery(g2, out, on_conflict="merge")
        assert state(g2) == before


# ----- bad archives: each must be refused with the target gallery unchanged


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _mutate_manifest(members: dict[str, bytes], fn) -> dict[str, bytes]:
    m = json.loads(members["manifest.json"])
    fn(m)
    return {**members, "manifest.json": json.dumps(m).encode()}


def _first_npy(members: dict[str, bytes]) -> str:
    return json.loads(members["manifest.json"])["people"][1]["templates"][0]["embedding_file"]  # Bob: 2 rows


def _set(m: dict, key: str, value) -> None:
    m[key] = value


def _bad_archives(members: dict[str, bytes]) -> dict[str, dict[str, bytes] | bytes]:
    npy = _first_npy(members)
    bob = np.load(io.BytesIO(members[npy]))
    nan = bob.copy()
    nan[0, 0] = np.nan
    return {
        "not-a-zip": np.random.default_rng(0).bytes(2000),
        "empty-file": b"",
        "missing-manifest": {k: v for k, v in members.items() if k != "manifest.json"},
        "manifest-not-json": {**members, "manifest.json": b"{not json"},
        "manifest-not-utf8": {**members, "manifest.json": b"\xff\xfe\x00"},
        "manifest-is-list": {**members, "manifest.json": b"[]"},
        "people-not-list": _mutate_manifest(members, lambda m: _set(m, "people", {})),
        "person-missing-name": _mutate_manifest(members, lambda m: m["people"][0].pop("name")),
        "template-missing-quality": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][0].pop("quality")
        ),
        "quality-nan": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][0].update(quality=float("nan"))
        ),
        "quality-string": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][0].update(quality="high")
        ),
        "bad-person-name": _mutate_manifest(members, lambda m: m["people"][0].update(name="a\nb")),
        "duplicate-names": _mutate_manifest(members, lambda m: m["people"][2].update(name="Bob")),
        "duplicate-template-ids": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][1].update(id=m["people"][1]["templates"][0]["id"])
        ),
        "wrong-format": _mutate_manifest(members, lambda m: _set(m, "format", "something-else")),
        "version-2": _mutate_manifest(members, lambda m: _set(m, "version", 2)),
        "version-string": _mutate_manifest(members, lambda m: _set(m, "version", "1")),
        "wrong-dim": _mutate_manifest(members, lambda m: _set(m, "dim", DIM + 1)),
        "missing-thumbnail": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][0].update(thumbnail="thumbnails/nope.png")
        ),
        "traversal-ref": _mutate_manifest(
            members, lambda m: m["people"][1]["templates"][0].update(thumbnail="../../etc/passwd")
        ),
        "traversal-member": {**members, "../evil.txt": b"x"},
        "traversal-nested": {**members, "thumbnails/../../evil.txt": b"x"},
        "absolute-member": {**members, "/etc/evil": b"x"},
        "drive-member": {**members, "C:/evil": b"x"},
        "backslash-member": {**members, "..\\evil": b"x"},
        "npy-float64": {**members, npy: _npy(bob.astype(np.float64))},
        "npy-1d": {**members, npy: _npy(bob[0])},
        "npy-wrong-dim": {**members, npy: _npy(np.zeros((2, DIM + 1), np.float32))},
        "npy-wrong-count": {**members, npy: _npy(np.concatenate([bob, bob]))},
        "npy-too-few": {**members, npy: _npy(bob[:1])},
        "npy-pickle": {**members, npy: _npy(np.array([{"evil": 1}, None], dtype=object))},
        "npy-garbage": {**members, npy: b"\x93NUMPY garbage"},
        "npy-nan": {**members, npy: _npy(nan)},
        "npy-zero-row": {**members, npy: _npy(np.zeros_like(bob))},
        "thumbnail-not-image": {
            **members,
            json.loads(members["manifest.json"])["people"][1]["templates"][0]["thumbnail"]: b"<html>",
        },
    }


def test_bad_archive_cases_refused(filled: Gallery, tmp_path: Path) -> None:
    good = export_gallery(filled, tmp_path / "good.zip")
    members = _members(good)
    with Gallery(tmp_path / "target.db") as target:
        target.add_person("Existing", [tmpl()])
        before = state(target)
        for case, content in _bad_archives(members).items():
            path = tmp_path / f"{case}.zip"
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                _write_zip(path, content)
            for mode in ("error", "merge", "skip"):
                with pytest.raises(GalleryError) as info:
                    import_gallery(target, path, on_conflict=mode)  # type: ignore[arg-type]
                assert "\n" not in str(info.value), case
                assert state(target) == before, case
        # the untouched archive still imports fine
        assert import_gallery(target, good).people_added == 3


def test_missing_archive(gallery: Gallery, tmp_path: Path) -> None:
    with pytest.raises(GalleryError, match="no such file"):
        import_gallery(gallery, tmp_path / "missing.zip")


def _patch_declared_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite the uncompressed size a zip's central directory declares for ``member``."""
    buf = bytearray(data)
    pos = buf.find(b"PK\x01\x02")
    while pos != -1:
        name_len = struct.unpack_from("<H", buf, pos + 28)[0]
        if bytes(buf[pos + 46 : pos + 46 + name_len]) == member.encode():
            struct.pack_into("<I", buf, pos + 24, size)
            return bytes(buf)
        pos = buf.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(f"{member} not found")


def test_enormous_declared_size_refused(filled: Gallery, tmp_path: Path) -> None:
    good = export_gallery(filled, tmp_path / "good.zip")
    npy = _first_npy(_members(good))
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(_patch_declared_size(good.read_bytes(), npy, 0xFFFF0000))
    with Gallery(tmp_path / "t.db") as target:
        before = state(target)
        with pytest.raises(GalleryError, match="too large"):
            import_gallery(target, bomb)
        assert state(target) == before


def test_size_caps(filled: Gallery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = export_gallery(filled, tmp_path / "good.zip")
    with Gallery(tmp_path / "t.db") as target:
        before = state(target)
        monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 100)
        with pytest.raises(GalleryError, match="too large"):
            import_gallery(target, good)
        monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 1 << 30)
        monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 100)
        with pytest.raises(GalleryError, match="too large"):
            import_gallery(target, good)
        assert state(target) == before


def test_lying_small_declared_size_refused(filled: Gallery, tmp_path: Path) -> None:
    good = export_gallery(filled, tmp_path / "good.zip")
    npy = _first_npy(_members(good))
    liar = tmp_path / "liar.zip"
    liar.write_bytes(_patch_declared_size(good.read_bytes(), npy, 10))
    with Gallery(tmp_path / "t.db") as target:
        before = state(target)
        with pytest.raises(GalleryError):
            import_gallery(target, liar)
        assert state(target) == before


def test_errors_are_faceapp_errors() -> None:
    assert issubclass(GalleryError, FaceAppError)
    assert issubclass(ModelMismatchError, GalleryError)
    assert issubclass(UnknownPersonError, GalleryError)


def test_merging_the_same_archive_twice_adds_no_duplicates(tmp_path):
    from faceapp.storage.archive import export_gallery, import_gallery

    source = Gallery(tmp_path / "a.sqlite3")
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(2, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    source.add_person("ann", [NewTemplate(v, "m1") for v in vectors])
    export_gallery(source, tmp_path / "a.zip")
    target = Gallery(tmp_path / "b.sqlite3")
    import_gallery(target, tmp_path / "a.zip")
    summary = import_gallery(target, tmp_path / "a.zip", on_conflict="merge")
    assert summary.templates_added == 0
    assert target.person("ann").template_count == 2
    source.close()
    target.close()
