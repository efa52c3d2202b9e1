"""The HNSW search index of large galleries (issue 15): the index file, the matcher that
uses it (same decisions as the exact one), and the recognizer's use of both."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest

from faceapp.recognition import ann
from faceapp.recognition.decision import cohort_scores
from faceapp.recognition.indexed import IndexedMatcher, IndexKeeper, build_matcher
from faceapp.recognition.matching import Matcher
from faceapp.storage.records import GalleryMatrix

pytest.importorskip("usearch")

DIM = 64


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _near(centres: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """Unit rows at about ``cosine`` from each of ``centres``."""
    noise = rng.normal(size=centres.shape).astype(np.float32)
    noise -= (noise * centres).sum(axis=1, keepdims=True) * centres
    return _unit(centres + _unit(noise) * np.sqrt(1 / cosine**2 - 1))


def _gallery(rng: np.random.Generator, people: int = 700, per_person: int = 5):
    """People with ``per_person`` templates around a centre (cosine 0.8), per-person
    thresholds from 0.3 to 0.8, and "not them" faces for 40 people; ids not in row order."""
    centres = _unit(rng.normal(size=(people, DIM)))
    owner = np.repeat(np.arange(people), per_person)
    embeddings = _near(centres[owner], 0.8, rng)
    ids = rng.permutation(10 * len(owner))[: len(owner)] + 1
    names = tuple(f"person {i:04d}" for i in range(people))
    thresholds = rng.uniform(0.3, 0.8, people).astype(np.float32)
    vetoed_people = rng.choice(people, 40, replace=False)
    negatives = _near(centres[vetoed_people], 0.95, rng)  # nearer the centre than their own templates
    return centres, embeddings, owner, ids, names, thresholds, vetoed_people, negatives


def _index(embeddings: np.ndarray, ids: np.ndarray, path=None) -> ann.TemplateIndex:
    index = ann.TemplateIndex(DIM, "test-model", path)
    index.sync(ids, embeddings)
    return index


def _same(a, b) -> bool:
    return (a.name, a.best_name) == (b.name, b.best_name) and np.allclose(
        (a.similarity, a.margin, a.threshold), (b.similarity, b.margin, b.threshold), atol=1e-5)


def test_the_indexed_matcher_decides_as_the_exact_one():
    rng = np.random.default_rng(0)
    centres, embeddings, owner, ids, names, thresholds, vetoed_people, negatives = _gallery(rng)
    kwargs = {"gallery_threshold": 0.5, "negatives": negatives, "negative_index": vetoed_people}
    exact = Matcher(embeddings, owner, names, thresholds, **kwargs)
    indexed = IndexedMatcher(embeddings, owner, names, thresholds, template_ids=ids, index=_index(embeddings, ids), **kwargs)
    asked = rng.choice(len(centres), 500)
    asked[:80] = vetoed_people[rng.integers(0, 40, 80)]  # look-alikes of the people with "not them" faces
    genuine = _near(centres[asked], 0.75, rng)
    lookalikes = _near(negatives[rng.integers(0, 40, 40)], 0.97, rng)  # nearer a negative than the person
    strangers = _unit(rng.normal(size=(200, DIM)))
    queries = np.concatenate([genuine, lookalikes, strangers])
    want, got = exact.match(queries, unique=False), indexed.match(queries, unique=False)
    assert all(_same(a, b) for a, b in zip(want, got))
    # The gallery exercises every rule: named, below one's own threshold, vetoed, strangers.
    best_threshold = {m.best_name: m.threshold for m in want if m.name is None}
    vetoed = [m for m in want if m.name is None and m.similarity >= best_threshold[m.best_name]
              and names.index(m.best_name) in set(vetoed_people)]
    assert sum(m.name is not None for m in want) > 300
    assert len(vetoed) >= 20
    assert sum(m.name is None and m.similarity < m.threshold for m in want) >= 50
    # One name per frame: frames of three faces, two of them of one person.
    for frame in range(30):
        faces = np.stack([genuine[frame], _near(centres[asked[frame]][None], 0.75, rng)[0], strangers[frame]])
        assert all(_same(a, b) for a, b in zip(exact.match(faces), indexed.match(faces)))


class _FixedIndex:
    """An index that always proposes the same template ids (-1: none)."""

    def __init__(self, keys):
        self.keys = np.asarray(keys, np.int64)

    def search(self, queries, count):
        return np.tile(self.keys[:count], (len(queries), 1))


def test_people_the_index_does_not_propose_are_absent():
    rng = np.random.default_rng(1)
    embeddings = _unit(rng.normal(size=(6, DIM)))
    owner = np.array([0, 0, 1, 1, 2, 2])
    ids = np.array([11, 12, 21, 22, 31, 32])
    query = _near(embeddings[:1], 0.9, rng)  # person 0's face
    exact = Matcher(embeddings, owner, ("a", "b", "c"), 0.1)
    assert exact.match(query)[0].name == "a"
    # Only c's templates (and ids the gallery no longer has, and padding) are proposed.
    indexed = IndexedMatcher(embeddings, owner, ("a", "b", "c"), 0.1, template_ids=ids, index=_FixedIndex([31, 99, -1, 32]))
    assert indexed.candidate_columns(query).tolist() == [2]
    match = indexed.match(query)[0]
    assert match.best_name == "c" and match.name in (None, "c")
    # Proposing one template of a person scores all of theirs: the best is the other one.
    indexed = IndexedMatcher(embeddings, owner, ("a", "b", "c"), 0.1, template_ids=ids, index=_FixedIndex([12]))
    assert indexed.match(query)[0].similarity == pytest.approx(exact.match(query)[0].similarity, abs=1e-6)
    # An index that knows none of the templates: decided exactly.
    indexed = IndexedMatcher(embeddings, owner, ("a", "b", "c"), 0.1, template_ids=ids, index=_FixedIndex([-1, 5]))
    assert _same(indexed.match(query)[0], exact.match(query)[0])


def test_the_index_changes_incrementally_and_reloads(tmp_path):
    rng = np.random.default_rng(2)
    embeddings = _unit(rng.normal(size=(600, DIM)))
    ids = np.arange(1, 601)
    path = tmp_path / "g.sqlite3.hnsw"
    index = ann.TemplateIndex(DIM, "m", path)
    assert index.sync(ids[:500], embeddings[:500], revision=1) == ann.SyncReport(500, 0, False)
    # 100 new templates, 50 gone: only the difference changes.
    report = index.sync(ids[50:], embeddings[50:], revision=2)
    assert report == ann.SyncReport(100, 50, False)
    assert sorted(index.ids().tolist()) == list(range(51, 601))
    found = index.search(embeddings[:60], 5)
    assert not np.isin(found, ids[:50]).any()  # removed ones are never proposed
    assert (index.search(embeddings[550:], 1)[:, 0] == ids[550:]).mean() > 0.95  # new ones are found
    # Removed vectors are only marked deleted: that index is never written ...
    assert not index.save() and not path.exists()
    # ... a fresh build of the same templates is.
    fresh = ann.TemplateIndex(DIM, "m", path)
    fresh.sync(ids[50:], embeddings[50:], revision=2)
    assert fresh.save() and path.exists() and fresh.sidecar.exists()
    again = ann.TemplateIndex.open(DIM, "m", path)
    assert again.revision == 2 and sorted(again.ids().tolist()) == list(range(51, 601))
    assert again.sync(ids[50:], embeddings[50:], revision=2) == ann.SyncReport(0, 0, False)
    assert not again.save()  # nothing changed: nothing written
    # Another model's index, or the same ids holding other faces: rebuilt.
    assert len(ann.TemplateIndex.open(DIM, "other-model", path)) == 0
    other = _unit(rng.normal(size=(550, DIM)))
    assert again.sync(ids[50:], other, revision=3).rebuilt
    assert (again.search(other[:20], 1)[:, 0] == ids[50:70]).mean() > 0.9


def test_fewer_templates_than_asked_are_padded():
    rng = np.random.default_rng(3)
    index = _index(_unit(rng.normal(size=(3, DIM))), np.array([7, 8, 9]))
    found = index.search(_unit(rng.normal(size=(2, DIM))), 5)
    assert found.shape == (2, 5) and (found[:, 3:] == -1).all() and sorted(found[0, :3]) == [7, 8, 9]
    assert sorted(index.search(_unit(rng.normal(size=(1, DIM))), 5)[0, :3]) == [7, 8, 9]
    assert (ann.TemplateIndex(DIM, "m").search(np.zeros((1, DIM), np.float32), 2) == -1).all()


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "sidecar", "no sidecar"])
def test_a_damaged_index_is_rebuilt_not_fatal(tmp_path, caplog, damage):
    rng = np.random.default_rng(4)
    embeddings = _unit(rng.normal(size=(300, DIM)))
    path = tmp_path / "g.sqlite3.hnsw"
    index = _index(embeddings, np.arange(300), path)
    index.save()
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:])
    elif damage == "garbage":
        path.write_bytes(b"not an index" * 100)
    elif damage == "sidecar":
        index.sidecar.write_text("{not json", encoding="utf-8")
    else:
        index.sidecar.unlink()
    with caplog.at_level(logging.WARNING, logger="faceapp.recognition.ann"):
        opened = ann.TemplateIndex.open(DIM, "test-model", path)
    assert len(opened) == 0 and "rebuilt" in caplog.text
    assert opened.sync(np.arange(300), embeddings).added == 300 and opened.save()
    assert len(ann.TemplateIndex.open(DIM, "test-model", path)) == 300
    assert json.loads(opened.sidecar.read_text(encoding="utf-8"))["count"] == 300


def _matrix(embeddings, owner, ids, names) -> GalleryMatrix:
    return GalleryMatrix(embeddings, owner, names, "m", np.zeros((0, DIM), np.float32), np.zeros(0, np.int64),
                         np.full(len(names), np.nan), ids)


def test_the_keeper_uses_an_index_only_from_its_threshold_and_without_usearch_warns_once(monkeypatch, caplog):
    rng = np.random.default_rng(5)
    embeddings = _unit(rng.normal(size=(200, DIM)))
    owner, names = np.arange(200) // 2, tuple(f"p{i}" for i in range(100))
    data = _matrix(embeddings, owner, np.arange(200), names)
    thresholds = np.full(100, 0.5, np.float32)
    assert type(build_matcher(data, thresholds, 0.5, keeper=IndexKeeper(min_templates=201))) is Matcher
    assert type(build_matcher(data, thresholds, 0.5, keeper=IndexKeeper(min_templates=200))) is IndexedMatcher
    no_ids = GalleryMatrix(embeddings, owner, names, "m")  # a gallery that gives no template ids
    assert type(build_matcher(no_ids, thresholds, 0.5, keeper=IndexKeeper(min_templates=10))) is Matcher
    monkeypatch.setattr(ann, "available", lambda: False)
    keeper = IndexKeeper(min_templates=10)
    with caplog.at_level(logging.WARNING, logger="faceapp.recognition.indexed"):
        first = build_matcher(data, thresholds, 0.5, keeper=keeper)
        second = build_matcher(data, thresholds, 0.5, keeper=keeper)
    assert type(first) is Matcher and type(second) is Matcher
    assert caplog.text.count("usearch is not installed") == 1


def test_the_recognizer_keeps_the_index_next_to_the_gallery_and_updates_it(tmp_path):
    from faceapp.embedding.modelcard import load_card
    from faceapp.recognition.pipeline import Recognizer
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.records import NewTemplate

    card = load_card(None)
    rng = np.random.default_rng(6)
    centres = _unit(rng.normal(size=(61, card.embedding_dim)))
    path = tmp_path / "g.sqlite3"
    with Gallery(path) as gallery:
        for i in range(60):
            faces = _near(np.repeat(centres[i : i + 1], 4, axis=0), 0.8, rng)
            gallery.add_person(f"person {i}", [NewTemplate(f, card.model_id) for f in faces])
        live = Recognizer(card, None, SimpleNamespace(model_id=card.model_id), 0.5, gallery, index_min_templates=200)
        first = live.matcher()
        assert isinstance(first, IndexedMatcher) and len(first.index) == 240
        assert ann.index_path(path).exists() and json.loads(ann.index_path(path).with_suffix(".hnsw.json").read_text())["count"] == 240
        query = _near(centres[60:], 0.8, rng)
        assert first.match(query)[0].name is None
        gallery.add_person("newcomer", [NewTemplate(f, card.model_id) for f in _near(centres[[60, 60]], 0.8, rng)])
        assert live.matcher() is first  # a large gallery is rebuilt in the background...
        assert live.wait_for_refresh(60)
        second = live.matcher()
        assert second is not first and second.index is first.index  # ...and the index only gets the difference
        assert len(second.index) == 242 and second.match(query)[0].name == "newcomer"
        live.decision = 0.99  # a new rule is applied in the background too, to the matrix already read
        live.matcher()
        assert live.wait_for_refresh(60) and live.matcher().threshold == pytest.approx(0.99)
    # The next start loads the saved index instead of building it (nothing to add or remove).
    with Gallery(path) as gallery:
        again = Recognizer(card, None, SimpleNamespace(model_id=card.model_id), 0.5, gallery, index_min_templates=200)
        index = again.matcher().index
        assert len(index) == 242 and index.sync(gallery.matrix(card.model_id).template_ids,
                                                gallery.matrix(card.model_id).embeddings) == ann.SyncReport(0, 0, False)


def test_an_encrypted_gallerys_index_stays_in_memory(tmp_path):
    from faceapp.embedding.modelcard import load_card
    from faceapp.recognition.pipeline import Recognizer
    from faceapp.storage.crypto import KdfParams
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.records import NewTemplate

    card = load_card(None)
    rng = np.random.default_rng(7)
    path = tmp_path / "secret.sqlite3"
    with Gallery(path) as gallery:
        gallery.add_person("a", [NewTemplate(f, card.model_id) for f in _unit(rng.normal(size=(30, card.embedding_dim)))])
        gallery.encrypt("correct horse", kdf=KdfParams(n=2**10, r=8, p=1))
        live = Recognizer(card, None, SimpleNamespace(model_id=card.model_id), 0.5, gallery, index_min_templates=10)
        assert isinstance(live.matcher(), IndexedMatcher)
    assert not ann.index_path(path).exists()


def test_cohort_scores_do_not_depend_on_the_block_size():
    rng = np.random.default_rng(8)
    embeddings = _unit(rng.normal(size=(3000, 16)))
    owner = rng.integers(0, 900, 3000)
    owner[owner == 5] = 6  # someone without templates
    whole = cohort_scores(embeddings, owner, 902, 20, sample=700, block=10**9)
    for block in (1, 37, 1000):
        np.testing.assert_allclose(cohort_scores(embeddings, owner, 902, 20, sample=700, block=block), whole, atol=1e-6)
    present = np.bincount(owner, minlength=902) > 0
    assert not present[[5, 900, 901]].any()
    assert np.isfinite(whole[present]).all() and np.isnan(whole[~present]).all()


def test_a_large_first_build_runs_on_a_thread_with_exact_matching_meanwhile(tmp_path):
    from faceapp.embedding.modelcard import load_card
    from faceapp.recognition.pipeline import Recognizer
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.records import NewTemplate

    card = load_card(None)
    rng = np.random.default_rng(9)
    faces = _unit(rng.normal(size=(300, card.embedding_dim)))
    with Gallery(tmp_path / "g.sqlite3") as gallery:
        for i in range(100):
            gallery.add_person(f"p{i}", [NewTemplate(f, card.model_id) for f in faces[3 * i : 3 * i + 3]])
        live = Recognizer(card, None, SimpleNamespace(model_id=card.model_id), 0.5, gallery, index_min_templates=100)
        live.indexes.background_from = 50
        first = live.matcher()
        assert type(first) is Matcher  # exact until the index is ready...
        assert live.wait_for_refresh(60)
        second = live.matcher()
        assert isinstance(second, IndexedMatcher) and len(second.index) == 300  # ...then the index
        assert live.indexes.generation == 1 and live.matcher() is second
        assert [m.name for m in second.match(faces[:5], unique=False)] == [m.name for m in first.match(faces[:5], unique=False)]


def test_removing_or_encrypting_faces_deletes_the_search_index_beside_the_gallery(tmp_path) -> None:
    """The index holds embeddings in clear: a removal or encryption must not leave them there."""
    from faceapp.files import search_index_files
    from faceapp.storage.gallery import Gallery, NewTemplate

    rng = np.random.default_rng(5)

    def template():
        v = rng.standard_normal(16).astype(np.float32)
        return NewTemplate(v / np.linalg.norm(v), "m")

    path = tmp_path / "g.db"
    with Gallery(path) as gallery:
        gallery.add_person("Ann", [template(), template()])
        gallery.add_person("Bea", [template()])
        for step in (lambda: gallery.remove("Bea"), lambda: gallery.remove_templates([gallery.templates("Ann")[0].id]),
                     lambda: gallery.encrypt("pw")):
            for file in search_index_files(path):
                file.write_bytes(b"stale index")
            step()
            assert not any(f.exists() for f in search_index_files(path))


def test_template_ids_are_never_reused(tmp_path) -> None:
    from faceapp.storage.gallery import Gallery, NewTemplate

    rng = np.random.default_rng(9)

    def template():
        v = rng.standard_normal(16).astype(np.float32)
        return NewTemplate(v / np.linalg.norm(v), "m")

    with Gallery(tmp_path / "g.db") as gallery:
        gallery.add_person("Ann", [template()])
        gallery.add_person("Bea", [template(), template()])
        removed = {t.id for t in gallery.templates("Bea")}
        gallery.remove("Bea")
        gallery.add_person("Cid", [template(), template()])
        assert not removed & {t.id for t in gallery.templates("Cid")}


def test_an_index_that_had_faces_removed_is_never_written(tmp_path) -> None:
    """usearch only marks a removed vector deleted: such an index must not reach the disk."""
    from faceapp.recognition.ann import TemplateIndex

    rng = np.random.default_rng(3)
    rows = rng.standard_normal((400, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    path = tmp_path / "g.db.hnsw"
    index = TemplateIndex(16, "m", path)
    index.sync(np.arange(400), rows, revision=1)
    assert index.save(lambda: 1) and path.exists()
    index.sync(np.arange(1, 400), rows[1:], revision=2)  # template 0 removed
    assert not index.save(lambda: 2) and not path.exists() and not index.sidecar.exists()
    fresh = TemplateIndex(16, "m", path)
    fresh.sync(np.arange(1, 400), rows[1:], revision=2)
    assert not fresh.save(lambda: 3)  # behind the gallery: a face may have gone meanwhile
    assert fresh.save(lambda: 2) and rows[0].tobytes() not in path.read_bytes()


def test_a_half_written_index_is_removed_and_counts_as_the_galleries(tmp_path, monkeypatch) -> None:
    import os as os_module

    from faceapp.files import search_index_files
    from faceapp.recognition.ann import TemplateIndex

    rng = np.random.default_rng(4)
    rows = rng.standard_normal((50, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    index = TemplateIndex(16, "m", tmp_path / "g.db.hnsw")
    index.sync(np.arange(50), rows)

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os_module, "replace", full)
    assert not index.save()
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "g.db.hnsw.partial-abc").write_bytes(b"left by a killed process")
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "g.db")
    assert tmp_path / "g.db.hnsw.partial-abc" in search_index_files(link)


def test_a_one_off_command_never_starts_a_long_index_build(tmp_path) -> None:
    """`faceapp identify` would exit long before a large index is built: it searches exactly."""
    import threading

    from faceapp.recognition.indexed import IndexKeeper

    rng = np.random.default_rng(6)
    embeddings = _unit(rng.normal(size=(300, DIM)))
    owner, names = np.arange(300) // 3, tuple(f"p{i}" for i in range(100))
    data = _matrix(embeddings, owner, np.arange(1, 301), names)
    before = threading.active_count()
    keeper = IndexKeeper(100, background_from=50, builds=False)
    assert keeper.index_for(data, tmp_path / "g.db.hnsw", 1) is None
    assert not keeper.building and threading.active_count() == before and not (tmp_path / "g.db.hnsw").exists()
    live = IndexKeeper(100, background_from=50)
    assert live.index_for(data, tmp_path / "g.db.hnsw", 1, lambda: 1) is None and live.wait(30)
    assert live.index_for(data, tmp_path / "g.db.hnsw", 1, lambda: 1) is not None


def test_a_person_with_many_templates_still_has_a_runner_up() -> None:
    """All 32 candidates may be one person's: the index is asked for more, so the margin
    is the exact matcher's."""
    from faceapp.recognition.ann import TemplateIndex
    from faceapp.recognition.indexed import IndexedMatcher
    from faceapp.recognition.matching import Matcher

    rng = np.random.default_rng(8)
    centre = _unit(rng.normal(size=(1, DIM)))
    many = _unit(centre + 0.15 * rng.normal(size=(60, DIM)))  # one person, 60 alike templates
    others = _unit(rng.normal(size=(200, DIM)))
    embeddings = np.concatenate([many, others])
    owner = np.concatenate([np.zeros(60, np.int64), 1 + np.arange(200) // 2])
    names = tuple(f"p{i}" for i in range(101))
    ids = np.arange(1, len(embeddings) + 1)
    index = TemplateIndex(DIM, "m")
    index.sync(ids, embeddings)
    exact = Matcher(embeddings, owner, names, 0.3)
    indexed = IndexedMatcher(embeddings, owner, names, 0.3, template_ids=ids, index=index)
    face = _unit(centre + 0.05 * rng.normal(size=(1, DIM)))
    assert indexed.match(face) == exact.match(face)
