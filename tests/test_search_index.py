"""The search index of large galleries (issue 15: faiss PQ fast-scan codes, candidates
re-scored exactly): the matcher that uses it (same decisions as the exact one), and the
recognizer's use of both; the index file itself: ``test_template_index.py``."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
from unit_vectors import near as _near
from unit_vectors import unit as _unit

from faceapp.recognition import ann
from faceapp.recognition.decision import cohort_scores
from faceapp.recognition.indexed import IndexedMatcher, IndexKeeper, build_matcher
from faceapp.recognition.matching import Matcher
from faceapp.storage.records import GalleryMatrix

pytest.importorskip("faiss")

DIM = 64




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


class _ExactIndex:
    """An ideal index: the exact nearest template ids, best first."""

    def __init__(self, embeddings: np.ndarray, ids: np.ndarray):
        self.embeddings, self.ids = embeddings, ids

    def search(self, queries, count):
        return self.ids[np.argsort(-(queries @ self.embeddings.T), axis=1, kind="stable")[:, :count]]


@pytest.mark.parametrize("engine", ["ideal", "faiss"])
def test_the_indexed_matcher_decides_as_the_exact_one(engine):
    """The same decisions as the exact matcher on the people proposed: with an ideal
    index all of them, including one name per frame; with the app's index (approximate
    codes) every face of a batch, and frames as the exact matcher over the people
    proposed (this crowded gallery, thresholds from 0.3, lets a face whose person is
    taken fall back on someone far down its ranking)."""
    rng = np.random.default_rng(0)
    centres, embeddings, owner, ids, names, thresholds, vetoed_people, negatives = _gallery(rng)
    kwargs = {"gallery_threshold": 0.5, "negatives": negatives, "negative_index": vetoed_people}
    exact = Matcher(embeddings, owner, names, thresholds, **kwargs)
    index = _ExactIndex(embeddings, ids) if engine == "ideal" else _index(embeddings, ids)
    assert engine == "ideal" or index.kind == "pq"
    indexed = IndexedMatcher(embeddings, owner, names, thresholds, template_ids=ids, index=index, **kwargs)
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
    same = []
    for frame in range(30):
        faces = np.stack([genuine[frame], _near(centres[asked[frame]][None], 0.75, rng)[0], strangers[frame]])
        got = indexed.match(faces)
        same += [_same(a, b) for a, b in zip(exact.match(faces), got)]
        proposed = np.isin(owner, indexed.candidate_columns(faces))  # every person is present: column = person
        on_proposed = Matcher(embeddings[proposed], owner[proposed], names, thresholds, gallery_threshold=0.5,
                              negatives=negatives[np.isin(vetoed_people, owner[proposed])],
                              negative_index=vetoed_people[np.isin(vetoed_people, owner[proposed])])
        assert all(_same(a, b) for a, b in zip(on_proposed.match(faces), got))
    assert all(same) if engine == "ideal" else np.mean(same) >= 0.9


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


def _matrix(embeddings, owner, ids, names) -> GalleryMatrix:
    return GalleryMatrix(embeddings, owner, names, "m", np.zeros((0, DIM), np.float32), np.zeros(0, np.int64),
                         np.full(len(names), np.nan), ids)


def test_the_keeper_uses_an_index_only_from_its_threshold_and_without_faiss_warns_once(monkeypatch, caplog):
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
    assert caplog.text.count("faiss is not installed") == 1


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
        sidecar = ann.index_path(path).with_name(path.name + ".faceindex.json")
        assert ann.index_path(path).name == "g.sqlite3.faceindex" and json.loads(sidecar.read_text())["count"] == 240
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
    assert keeper.index_for(data, tmp_path / "g.db.faceindex", 1) is None
    assert not keeper.building and threading.active_count() == before and not (tmp_path / "g.db.faceindex").exists()
    live = IndexKeeper(100, background_from=50)
    assert live.index_for(data, tmp_path / "g.db.faceindex", 1, lambda: 1) is None and live.wait(30)
    assert live.index_for(data, tmp_path / "g.db.faceindex", 1, lambda: 1) is not None


def test_a_person_with_many_templates_still_has_a_runner_up() -> None:
    """All the candidates may be one person's: the index is asked for more, so the margin
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
