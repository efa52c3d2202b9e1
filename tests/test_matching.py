"""Open-set matching on synthetic unit vectors (no models)."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.recognition.matching import Matcher

DIM = 16


def basis(*indices: int) -> np.ndarray:
    """Rows of the standard basis: mutually orthogonal unit vectors."""
    return np.eye(DIM, dtype=np.float32)[list(indices)]


def mix(a: np.ndarray, b: np.ndarray, weight_b: float) -> np.ndarray:
    """A unit vector whose cosine with orthogonal unit ``b`` is ``weight_b``."""
    vector = np.sqrt(1 - weight_b**2) * a + weight_b * b
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def test_a_person_scores_the_best_of_their_templates():
    # alice: templates e0, e1; bob: e2 (rows deliberately interleaved).
    templates = basis(0, 2, 1)
    matcher = Matcher(templates, np.array([0, 1, 0]), ("alice", "bob"), threshold=0.5)
    assert matcher.present_names == ("alice", "bob")
    assert matcher.person_count == 2
    queries = np.stack([basis(1)[0], basis(2)[0], mix(basis(0)[0], basis(1)[0], 0.6)])
    scores = matcher.person_scores(queries)
    assert scores.shape == (3, 2) and scores.dtype == np.float32
    np.testing.assert_allclose(scores[0], [1.0, 0.0], atol=1e-6)  # second template of alice
    np.testing.assert_allclose(scores[1], [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(scores[2], [0.8, 0.0], atol=1e-6)  # max(0.8, 0.6)


def test_open_set_threshold_and_margin():
    matcher = Matcher(basis(0, 1), np.array([0, 1]), ("alice", "bob"), threshold=0.5)
    e0, e1, e5 = basis(0, 1, 5)
    strong = mix(e0, e1, 0.3)  # alice ~0.954, bob 0.3
    weak = mix(e5, e0, 0.4)  # alice 0.4 < threshold
    known, unknown = matcher.match(np.stack([strong, weak]), unique=False)
    assert known.name == "alice" and known.best_name == "alice"
    assert known.similarity == pytest.approx(np.sqrt(1 - 0.09), abs=1e-6)
    assert known.margin == pytest.approx(np.sqrt(1 - 0.09) - 0.3, abs=1e-6)
    assert known.threshold == 0.5
    assert unknown.name is None and unknown.best_name == "alice"
    assert unknown.similarity == pytest.approx(0.4, abs=1e-6)


def test_threshold_is_inclusive():
    matcher = Matcher(basis(0), np.array([0]), ("alice",), threshold=1.0)
    (match,) = matcher.match(basis(0))
    assert match.name == "alice"


def test_single_person_margin_is_the_similarity():
    matcher = Matcher(basis(0), np.array([0]), ("alice",), threshold=0.3)
    (match,) = matcher.match(mix(basis(0)[0], basis(3)[0], 0.6)[None])
    assert match.margin == pytest.approx(match.similarity)


def test_two_faces_cannot_both_be_the_same_person():
    e0, e1, e2, e3 = basis(0, 1, 2, 3)
    matcher = Matcher(np.stack([e0, e1]), np.array([0, 1]), ("alice", "bob"), threshold=0.4)
    # Both faces look most like alice; the first less so. The second one wins alice,
    # the first falls back to bob (above the threshold) and keeps its original best.
    first = (0.7 * e0 + 0.6 * e1 + 0.3873 * e2).astype(np.float32)
    first /= np.linalg.norm(first)
    second = mix(e0, e3, 0.1)
    free = matcher.match(np.stack([first, second]), unique=False)
    assert [m.name for m in free] == ["alice", "alice"]
    one, two = matcher.match(np.stack([first, second]))
    assert two.name == "alice"
    assert one.name == "bob" and one.best_name == "alice"
    assert one.similarity == pytest.approx(float(first @ e1), abs=1e-6)


def test_losing_face_without_another_candidate_becomes_unknown():
    e0, e3, e4 = basis(0, 3, 4)
    matcher = Matcher(e0[None], np.array([0]), ("alice",), threshold=0.4)
    weaker, stronger = mix(e0, e4, 0.6), mix(e0, e3, 0.2)
    first, second = matcher.match(np.stack([weaker, stronger]))
    assert second.name == "alice"
    assert first.name is None and first.best_name == "alice"
    assert first.similarity == pytest.approx(0.8, abs=1e-6)


def test_people_without_templates_are_not_present():
    matcher = Matcher(basis(0, 1), np.array([2, 2]), ("alice", "bob", "carol"), threshold=0.5)
    assert matcher.present_names == ("carol",)
    (match,) = matcher.match(basis(1))
    assert match.name == "carol"


@pytest.mark.parametrize("matcher", [Matcher.empty(DIM, 0.4), Matcher(np.zeros((0, DIM)), np.zeros(0), ("x",), 0.4)])
def test_empty_gallery_names_nobody(matcher):
    assert matcher.person_count == 0 and matcher.present_names == ()
    matches = matcher.match(basis(0, 1))
    assert len(matches) == 2
    for match in matches:
        assert match.name is None and match.best_name is None
        assert match.similarity == 0.0 and match.margin == 0.0 and match.threshold == 0.4
    assert matcher.person_scores(basis(0)).shape == (1, 0)


def test_no_queries_no_matches():
    matcher = Matcher(basis(0), np.array([0]), ("alice",), threshold=0.4)
    assert matcher.match(np.zeros((0, DIM), np.float32)) == []


def test_input_validation():
    with pytest.raises(ValueError):
        Matcher(basis(0, 1), np.array([0]), ("alice",), 0.5)  # 2 rows, 1 index
    with pytest.raises(ValueError):
        Matcher(basis(0), np.array([1]), ("alice",), 0.5)  # index outside names
    with pytest.raises(ValueError):
        Matcher(basis(0), np.array([-1]), ("alice",), 0.5)
    with pytest.raises(ValueError):
        Matcher(np.zeros(DIM), np.array([0]), ("alice",), 0.5)  # 1-D embeddings
    with pytest.raises(ValueError):
        Matcher(basis(0), np.array([0]), ("alice",), 0.5).person_scores(np.zeros(DIM))


def test_many_people_vectorised():
    rng = np.random.default_rng(7)
    people, per_person, dim = 50, 3, 128
    templates = rng.normal(size=(people * per_person, dim)).astype(np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    index = np.repeat(np.arange(people), per_person)
    shuffle = rng.permutation(len(index))
    names = tuple(f"person {i:02d}" for i in range(people))
    matcher = Matcher(templates[shuffle], index[shuffle], names, threshold=0.9)
    matches = matcher.match(templates[::per_person], unique=False)
    assert [m.name for m in matches] == list(names)
    # Reference: the loop the matrix product replaces.
    scores = matcher.person_scores(templates[:5])
    for q in range(5):
        for p in range(people):
            expected = max(float(templates[q] @ templates[i]) for i in range(len(index)) if index[i] == p)
            assert scores[q, p] == pytest.approx(expected, abs=1e-5)
