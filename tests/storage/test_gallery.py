"""Tests for faceapp.storage.gallery: people, templates, transactions, bad files (synthetic unit vectors, no models)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from faceapp.errors import (
    GalleryError,
    ModelMismatchError,
    UnknownPersonError,
)
from faceapp.storage.gallery import Gallery, GalleryMatrix, NewTemplate

from .gallery_data import DIM, MODEL, PNG, REPO, state, tmpl, unit

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


def test_removing_many_templates_is_one_transaction_and_one_wipe(filled: Gallery, monkeypatch) -> None:
    wipes = []
    original = type(filled).wipe_free_space
    monkeypatch.setattr(type(filled), "wipe_free_space", lambda self: wipes.append(1) or original(self))
    carol = [t.id for t in filled.templates("Carol")]
    revision = filled.revision()
    assert filled.remove_templates(carol + [carol[0]]) == 3  # a repeated id counts once
    assert filled.revision() == revision + 1 and len(wipes) == 1
    assert filled.person("Carol").template_count == 0
    before = state(filled)
    bob = [t.id for t in filled.templates("Bob")]
    with pytest.raises(GalleryError, match="no template with id 999"):
        filled.remove_templates([bob[0], 999])
    assert state(filled) == before and len(wipes) == 1  # all or nothing
    with pytest.raises(GalleryError, match="integer"):
        filled.remove_templates([True])
    assert filled.remove_templates([]) == 0


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
    assert "other-model" in msg and MODEL in msg and "gallery reembed" in msg and "\n" not in msg




def test_negatives_and_own_thresholds_reach_the_matrix_and_archives(gallery: Gallery, tmp_path: Path) -> None:
    from faceapp.storage.archive import export_gallery, import_gallery

    gallery.add_person("ann", [tmpl(), tmpl()])
    gallery.add_person("bo", [tmpl()])
    gallery.add_negatives("ann", [tmpl()])
    gallery.set_threshold("bo", 0.55)
    m = gallery.matrix(MODEL)
    assert len(m.embeddings) == 3 and m.negatives.shape == (1, DIM)  # negatives are not positives
    assert m.names[m.negative_index[0]] == "ann"
    thresholds = dict(zip(m.names, m.thresholds))
    assert np.isnan(thresholds["ann"]) and thresholds["bo"] == pytest.approx(0.55)
    with pytest.raises(GalleryError):
        gallery.set_threshold("bo", 1.5)
    archive = export_gallery(gallery, tmp_path / "a.zip")
    with Gallery(tmp_path / "copy.db") as copy:
        import_gallery(copy, archive)
        again = copy.matrix(MODEL)
        assert again.negatives.shape == (1, DIM) and dict(zip(again.names, again.thresholds))["bo"] == pytest.approx(0.55)
