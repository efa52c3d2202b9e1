"""The search index file of large galleries (issue 15): faiss PQ fast-scan codes (a flat
index for small galleries) keyed by template id, kept in step with the gallery, saved and
loaded next to it; training, removal, damage, threads. The matcher that uses it:
``test_search_index.py``."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from unit_vectors import near as _near
from unit_vectors import unit as _unit

from faceapp.recognition import ann

pytest.importorskip("faiss")

DIM = 64




def _index(embeddings: np.ndarray, ids: np.ndarray, path=None) -> ann.TemplateIndex:
    index = ann.TemplateIndex(DIM, "test-model", path)
    index.sync(ids, embeddings)
    return index


@pytest.mark.parametrize("count", [600, 3000])  # a flat index (few templates), PQ fast-scan codes
def test_the_index_changes_incrementally_and_reloads(tmp_path, count):
    rng = np.random.default_rng(2)
    embeddings = _unit(rng.normal(size=(count, DIM)))
    ids = np.arange(1, count + 1)
    keep = count - 100
    path = tmp_path / "g.sqlite3.faceindex"
    index = ann.TemplateIndex(DIM, "m", path)
    assert index.sync(ids[:keep], embeddings[:keep], revision=1) == ann.SyncReport(keep, 0, False)
    assert index.kind == ("pq" if count >= ann.PQ_FROM else "flat")
    # 100 new templates, 50 gone: only the difference changes.
    report = index.sync(ids[50:], embeddings[50:], revision=2)
    assert report == ann.SyncReport(100, 50, False)
    assert sorted(index.ids().tolist()) == list(range(51, count + 1))
    found = index.search(embeddings[:60], 16)
    assert not np.isin(found, ids[:50]).any()  # removed ones are never proposed
    assert np.mean([ids[i] in found_row for i, found_row in zip(range(keep, count), index.search(embeddings[keep:], 16))]) > 0.95
    # Removal is real: the index with faces removed is saved, and reloads as exactly the rest.
    assert index.save() and path.exists() and index.sidecar.exists()
    again = ann.TemplateIndex.open(DIM, "m", path)
    assert again.revision == 2 and again.kind == index.kind and sorted(again.ids().tolist()) == list(range(51, count + 1))
    assert not np.isin(again.search(embeddings[:60], 16), ids[:50]).any()
    assert again.sync(ids[50:], embeddings[50:], revision=2) == ann.SyncReport(0, 0, False)
    assert not again.save()  # nothing changed: nothing written
    # Another model's index, or the same ids holding other faces: rebuilt.
    assert len(ann.TemplateIndex.open(DIM, "other-model", path)) == 0
    other = _unit(rng.normal(size=(count - 50, DIM)))
    assert again.sync(ids[50:], other, revision=3).rebuilt
    found = again.search(other[:20], 16)
    assert np.mean([ids[50 + i] in found[i] for i in range(20)]) > 0.9


def test_removed_faces_are_gone_from_the_saved_file(tmp_path) -> None:
    """faiss really removes (usearch only marked them deleted): the saved file of an index
    that had faces removed holds exactly the others; one behind the gallery is not saved."""
    rng = np.random.default_rng(3)
    rows = _unit(rng.normal(size=(400, 16)))
    path = tmp_path / "g.db.faceindex"
    index = ann.TemplateIndex(16, "m", path)
    index.sync(np.arange(400), rows, revision=1)
    assert index.kind == "flat" and index.save(lambda: 1) and rows[0].tobytes() in path.read_bytes()
    index.sync(np.arange(1, 400), rows[1:], revision=2)  # template 0 removed
    assert not index.save(lambda: 3)  # behind the gallery: a face may have gone meanwhile
    assert index.save(lambda: 2) and rows[0].tobytes() not in path.read_bytes() and rows[1].tobytes() in path.read_bytes()
    assert sorted(ann.TemplateIndex.open(16, "m", path).ids().tolist()) == list(range(1, 400))


def test_additions_after_a_removal_are_encoded_right() -> None:
    """faiss 1.15.1's IndexFastScan.remove_ids leaves old codes in the last block of 32,
    which the next additions are OR-ed into: the index re-encodes instead. Every stored
    code must be its row's."""
    rng = np.random.default_rng(14)
    rows = _unit(rng.normal(size=(3000, DIM)))
    ids = np.arange(3000) + 1
    index = _index(rows[:2900], ids[:2900])
    index.sync(ids[50:2900], rows[50:2900])  # 50 gone
    index.sync(ids[50:2910], rows[50:2910])  # 10 added in place
    index.sync(ids[50:], rows[50:])  # 90 more
    held, codes = index.ids(), index._engine.index.index  # the ids in stored order; the PQ fast-scan index
    stored = codes.reconstruct_batch(np.arange(len(held), dtype=np.int64))
    np.testing.assert_array_equal(stored, codes.sa_decode(codes.sa_encode(rows[held - 1])))
    found = index.search(rows[2900:], 16)
    assert all(ids[2900 + i] in found[i] for i in range(100))


def test_a_growing_gallery_is_retrained_and_a_tiny_one_is_exact() -> None:
    """Below PQ_FROM templates (faiss's k-means wants 39 rows per centroid) the index is
    exact; from it on, PQ codes, retrained as the gallery outgrows the rows they were trained on."""
    rng = np.random.default_rng(10)
    rows = _unit(rng.normal(size=(9000, DIM)))
    ids = np.arange(9000) + 1
    index = ann.TemplateIndex(DIM, "m")
    for count in (1, 3, 15, 16, 17):  # fewer rows than centroids: still an index, exact
        assert not index.sync(ids[:count], rows[:count]).rebuilt and index.kind == "flat" and len(index) == count
        assert sorted(index.search(rows[:1], 32)[0, :count].tolist()) == ids[:count].tolist()
        assert (index.search(rows[:count], 1)[:, 0] == ids[:count]).all()
    report = index.sync(ids[: ann.PQ_FROM], rows[: ann.PQ_FROM])
    assert report.rebuilt and report.added == ann.PQ_FROM and index.kind == "pq"
    assert not index.sync(ids[:2000], rows[:2000]).rebuilt  # under 4x the 1024 rows trained on
    assert index.sync(ids[:4096], rows[:4096]).rebuilt and len(index) == 4096
    assert not index.sync(ids[:9000], rows[:9000]).rebuilt
    assert index.sync(ids[:3], rows[:3]) == ann.SyncReport(0, 8997, False)  # shrinking keeps the codes: fine
    assert sorted(index.search(rows[:1], 5)[0].tolist()) == [-1, -1, 1, 2, 3]
    assert ann.TemplateIndex(18, "m").sync(ids[:2000], _unit(rng.normal(size=(2000, 18)))).added == 2000  # 18 % 4: flat


def test_the_candidates_hold_the_nearest_template_like_exact_search() -> None:
    """Recall on a few thousand face-like templates (people of 4 templates around a centre,
    an uneven spectrum like real embeddings'): the exact nearest is among 16 candidates."""
    rng = np.random.default_rng(11)
    spread = np.linspace(1.0, 0.2, 128).astype(np.float32)  # most variance in a few directions, as SFace's
    centres = _unit(0.3 + rng.normal(size=(1500, 128)).astype(np.float32) * spread)
    rows = _near(np.repeat(centres, 4, axis=0), 0.75, rng)
    ids = rng.permutation(10 * len(rows))[: len(rows)] + 1
    index = ann.TemplateIndex(128, "m")
    index.sync(ids, rows)
    assert index.kind == "pq" and index.memory_bytes < rows.nbytes / 8
    asked = rng.choice(len(rows), 400, replace=False)
    queries = _near(rows[asked], 0.7, rng)
    truth = ids[np.argmax(queries @ rows.T, axis=1)]
    found = index.search(queries, 16)
    row_of = {int(t): i for i, t in enumerate(ids)}
    rescored = [row[np.argmax([queries[q] @ rows[row_of[int(t)]] for t in row])] for q, row in enumerate(found)]
    assert np.mean(np.array(rescored) == truth) >= 0.99
    assert np.mean(found[:, 0] == truth) < np.mean(np.array(rescored) == truth) + 1e-9  # the codes alone: approximate


def test_searches_go_on_while_the_index_changes() -> None:
    """A search never sees an index being changed: small additions wait for the lock, the
    rest (removals, large additions) is made on a copy, swapped in."""
    import threading

    rng = np.random.default_rng(12)
    rows = _unit(rng.normal(size=(6000, DIM)))
    ids = np.arange(6000) + 1
    index = ann.TemplateIndex(DIM, "m")
    index.sync(ids[:4000], rows[:4000])
    failures, done = [], threading.Event()

    def search():
        while not done.is_set():
            found = index.search(rows[:8], 32)
            if found.shape != (8, 32) or not ((found >= 1) & (found <= 6000)).all():
                failures.append(found)

    thread = threading.Thread(target=search)
    thread.start()
    try:
        for step in range(30):
            low, high = 10 * step, 4000 + 60 * step  # some gone, some new, each time
            index.sync(ids[low:high], rows[low:high])
            assert len(index) == high - low
    finally:
        done.set()
        thread.join(30)
    assert not failures


def test_the_previous_versions_index_is_ignored_then_deleted(tmp_path, caplog) -> None:
    from faceapp.files import search_index_files

    rng = np.random.default_rng(13)
    rows = _unit(rng.normal(size=(50, DIM)))
    gallery = tmp_path / "g.sqlite3"
    old = [tmp_path / "g.sqlite3.hnsw", tmp_path / "g.sqlite3.hnsw.json"]
    for file in old:
        file.write_bytes(b"usearch's index")
    assert set(old) <= set(search_index_files(gallery))  # removed or moved with the gallery
    with caplog.at_level(logging.INFO, logger="faceapp.recognition.ann"):
        index = ann.TemplateIndex.open(DIM, "m", ann.index_path(gallery))
    assert len(index) == 0 and "previous version" in caplog.text
    index.sync(np.arange(50), rows)
    assert index.save() and not any(f.exists() for f in old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.sqlite3.faceindex", "g.sqlite3.faceindex.json"]


def test_fewer_templates_than_asked_are_padded():
    rng = np.random.default_rng(3)
    index = _index(_unit(rng.normal(size=(3, DIM))), np.array([7, 8, 9]))
    found = index.search(_unit(rng.normal(size=(2, DIM))), 5)
    assert found.shape == (2, 5) and (found[:, 3:] == -1).all() and sorted(found[0, :3]) == [7, 8, 9]
    assert sorted(index.search(_unit(rng.normal(size=(1, DIM))), 5)[0, :3]) == [7, 8, 9]
    assert (ann.TemplateIndex(DIM, "m").search(np.zeros((1, DIM), np.float32), 2) == -1).all()
    rows = _unit(rng.normal(size=(2000, DIM)))
    codes = _index(rows, np.arange(2000))
    codes.sync(np.array([5, 6]), rows[[5, 6]])
    assert codes.kind == "pq" and sorted(codes.search(rows[:1], 4)[0].tolist()) == [-1, -1, 5, 6]


@pytest.mark.parametrize("count", [300, 2000])  # flat, PQ
@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "swapped", "kind", "ids", "sidecar", "no sidecar"])
def test_a_damaged_index_is_rebuilt_not_fatal(tmp_path, caplog, damage, count):
    rng = np.random.default_rng(4)
    embeddings = _unit(rng.normal(size=(count, DIM)))
    path = tmp_path / "g.sqlite3.faceindex"
    index = _index(embeddings, np.arange(count), path)
    index.save()
    data = path.read_bytes()
    meta = json.loads(index.sidecar.read_text(encoding="utf-8"))
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:])
    elif damage == "garbage":
        path.write_bytes(b"not an index" * 100)
    elif damage == "swapped":  # another gallery's index file under this sidecar
        _index(embeddings[1:], np.arange(1, count), tmp_path / "other.faceindex").save()
        path.write_bytes((tmp_path / "other.faceindex").read_bytes())
    elif damage in ("kind", "ids"):  # a sidecar that describes its file's digest, but not its contents
        meta.update({"kind": "flat" if meta["kind"] == "pq" else "pq"} if damage == "kind" else {"count": count - 1})
        index.sidecar.write_text(json.dumps(meta), encoding="utf-8")
    elif damage == "sidecar":
        index.sidecar.write_text("{not json", encoding="utf-8")
    else:
        index.sidecar.unlink()
    with caplog.at_level(logging.WARNING, logger="faceapp.recognition.ann"):
        opened = ann.TemplateIndex.open(DIM, "test-model", path)
    assert len(opened) == 0 and "rebuilt" in caplog.text
    assert opened.sync(np.arange(count), embeddings).added == count and opened.save()
    assert len(ann.TemplateIndex.open(DIM, "test-model", path)) == count
    assert json.loads(opened.sidecar.read_text(encoding="utf-8"))["count"] == count


def test_a_half_written_index_is_removed_and_counts_as_the_galleries(tmp_path, monkeypatch) -> None:
    import os as os_module

    from faceapp.files import search_index_files
    from faceapp.recognition.ann import TemplateIndex

    rng = np.random.default_rng(4)
    rows = rng.standard_normal((50, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    index = TemplateIndex(16, "m", tmp_path / "g.db.faceindex")
    index.sync(np.arange(50), rows)

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os_module, "replace", full)
    assert not index.save()
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "g.db.faceindex.partial-abc").write_bytes(b"left by a killed process")
    (tmp_path / "g.db.hnsw.json.partial-def").write_bytes(b"left by the previous version")
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "g.db")
    assert {tmp_path / "g.db.faceindex.partial-abc", tmp_path / "g.db.hnsw.json.partial-def"} <= set(search_index_files(link))
