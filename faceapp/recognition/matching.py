"""Open-set matching of embeddings against the gallery: one matrix product.

Each person may have several templates; a person's score for a query is the best of
their templates' cosine similarities. The decision is open-set and per person: the
best-scoring person is named only if their score reaches *their* threshold (see
:mod:`faceapp.recognition.decision`) and the face is not nearer to one of their
*negative* templates (photos marked "not this person", e.g. a look-alike) than to their
positive ones; otherwise the next person that passes is taken, else "unknown".
"""

from __future__ import annotations

import numpy as np

from faceapp.types import Match


def _reduce_max(scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.maximum.reduceat(scores, starts, axis=1) if scores.shape[1] else scores


class Matcher:
    """Matches unit embeddings against a fixed set of templates.

    ``embeddings``: float32 ``(N, D)`` unit rows; ``person_index``: int ``(N,)`` indices
    into ``names``. ``threshold``: one number, or float ``(len(names),)`` per person.
    ``negatives`` / ``negative_index``: float32 ``(M, D)`` templates that are *not* the
    person ``negative_index`` names. Build a new Matcher when the gallery changes (cheap).
    ``threshold`` (the attribute) is the gallery-level threshold, for display.
    """

    def __init__(
        self,
        embeddings: np.ndarray,
        person_index: np.ndarray,
        names: tuple[str, ...] | list[str],
        threshold: float | np.ndarray,
        *,
        gallery_threshold: float | None = None,
        negatives: np.ndarray | None = None,
        negative_index: np.ndarray | None = None,
    ):
        embeddings = np.asarray(embeddings, np.float32)
        person_index = np.asarray(person_index, np.int64)
        if embeddings.ndim != 2 or len(embeddings) != len(person_index):
            raise ValueError(f"embeddings {embeddings.shape} and person_index {person_index.shape} disagree")
        if len(person_index) and (person_index.min() < 0 or person_index.max() >= len(names)):
            raise ValueError("person_index points outside names")
        self.names = tuple(names)
        if len(person_index) < 2 or np.all(person_index[1:] >= person_index[:-1]):
            order = np.arange(len(person_index))  # already by person (as Gallery.matrix gives): no copy
            self._embeddings = embeddings
        else:
            order = np.argsort(person_index, kind="stable")
            self._embeddings = embeddings[order]
        self._order = order  # row of the input behind each sorted row
        # Start of each present person's run of rows, for np.maximum.reduceat.
        self._people, self._starts = np.unique(person_index[order], return_index=True)
        self._present_names = tuple(self.names[i] for i in self._people)
        per_person = np.broadcast_to(np.asarray(threshold, np.float32), (len(self.names),)).astype(np.float32)
        self._thresholds = per_person[self._people] if len(self._people) else np.zeros(0, np.float32)
        if gallery_threshold is not None:
            self.threshold = float(gallery_threshold)
        elif np.ndim(threshold) == 0:
            self.threshold = float(threshold)
        else:
            self.threshold = float(np.median(per_person)) if len(per_person) else 0.0
        # Negatives, as rows of the same product, sorted by the present person they belong to.
        dim = embeddings.shape[1]
        self._negatives = np.zeros((0, dim), np.float32)
        self._negative_people = np.zeros(0, np.int64)  # columns (present people) with negatives
        self._negative_starts = np.zeros(0, np.int64)
        if negatives is not None and len(negatives):
            negative_index = np.asarray(negative_index, np.int64)
            column_of = {int(person): column for column, person in enumerate(self._people)}
            columns = np.array([column_of.get(int(p), -1) for p in negative_index], np.int64)
            keep = columns >= 0
            order = np.argsort(columns[keep], kind="stable")
            self._negatives = np.asarray(negatives, np.float32)[keep][order]
            self._negative_people, self._negative_starts = np.unique(columns[keep][order], return_index=True)
        # Stacked once here, not for every frame.
        self._all_rows = np.concatenate([self._embeddings, self._negatives]) if len(self._negatives) else self._embeddings

    @classmethod
    def empty(cls, dim: int, threshold: float) -> Matcher:
        return cls(np.zeros((0, dim), np.float32), np.zeros(0, np.int64), (), threshold, gallery_threshold=threshold)

    @property
    def person_count(self) -> int:
        return len(self._people)

    @property
    def template_count(self) -> int:
        """The number of positive templates matched against."""
        return len(self._embeddings)

    @property
    def present_names(self) -> tuple[str, ...]:
        return self._present_names

    def templates_of(self, name: str) -> np.ndarray:
        """float32 ``(K, D)``: the positive templates of ``name`` (none if absent)."""
        if name not in self.names:
            return self._embeddings[:0]
        person = self.names.index(name)
        column = np.searchsorted(self._people, person)
        if column >= len(self._people) or self._people[column] != person:
            return self._embeddings[:0]
        end = self._starts[column + 1] if column + 1 < len(self._starts) else len(self._embeddings)
        return self._embeddings[self._starts[column] : end]

    @property
    def person_thresholds(self) -> np.ndarray:
        """float32 ``(P,)``: each present person's threshold, in :attr:`present_names` order."""
        return self._thresholds

    def person_scores(self, queries: np.ndarray) -> np.ndarray:
        """float32 ``(Q, P)``: each query's best similarity to each present person, in
        the order of :attr:`present_names`."""
        return self._scores(queries)[0]

    def _scores(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(positive scores, vetoed)``, both ``(Q, P)``: vetoed where a person's best
        negative template is at least as similar as their best positive one."""
        queries = np.asarray(queries, np.float32)
        if queries.ndim != 2:
            raise ValueError(f"queries must be (Q, D), got {queries.shape}")
        if not len(self._people) or not len(queries):
            empty = np.zeros((len(queries), len(self._people)), np.float32)
            return empty, empty.astype(bool)
        if len(self._negatives):
            both = queries @ self._all_rows.T  # positives and negatives in one product
            positive = _reduce_max(both[:, : len(self._embeddings)], self._starts)
            vetoed = np.zeros(positive.shape, bool)
            nearest_negative = _reduce_max(both[:, len(self._embeddings) :], self._negative_starts)
            vetoed[:, self._negative_people] = nearest_negative >= positive[:, self._negative_people]
            return positive, vetoed
        positive = _reduce_max(queries @ self._embeddings.T, self._starts)
        return positive, np.zeros(positive.shape, bool)

    def match(self, queries: np.ndarray, unique: bool = True) -> list[Match]:
        """Decide each query. With ``unique``, one name is given to at most one query
        (faces of the same frame): the strongest claim wins and the other face falls
        back to its next person that passes, else "unknown"."""
        scores, vetoed = self._scores(queries)
        return self._decide(scores, vetoed, self._thresholds, self.present_names, unique)

    def _decide(self, scores: np.ndarray, vetoed: np.ndarray, thresholds: np.ndarray, names: tuple[str, ...],
                unique: bool) -> list[Match]:
        """The open-set decision on ``(Q, C)`` scores and vetoes of ``C`` people (their
        ``thresholds``, float32 ``(C,)``, and ``names``): all present people, or the
        candidates an index proposed (:mod:`faceapp.recognition.indexed`)."""
        passing = (scores >= thresholds[None]) & ~vetoed
        if not scores.shape[1]:
            return [Match(None, 0.0, None, 0.0, self.threshold) for _ in range(len(scores))]
        rows = np.arange(len(scores))
        best = scores.argmax(axis=1)  # the first of equal scores, like a stable sort
        best_score = scores[rows, best]
        second = np.partition(scores, -2, axis=1)[:, -2] if scores.shape[1] > 1 else np.zeros(len(scores), np.float32)
        chosen = np.where(passing, scores, -np.inf).argmax(axis=1)  # the best person that passes
        named = passing.any(axis=1)
        results: list[Match] = []
        for q in range(len(scores)):
            top, margin = float(best_score[q]), float(best_score[q] - second[q])
            if not named[q]:
                results.append(Match(None, top, names[best[q]], margin, float(thresholds[best[q]])))
            else:
                person = int(chosen[q])
                results.append(Match(names[person], float(scores[q, person]), names[best[q]], margin, float(thresholds[person])))
        if unique and len(results) > 1:
            results = _make_unique(scores, passing, results, thresholds, names)
        return results


def _make_unique(scores: np.ndarray, passing: np.ndarray, results: list[Match], thresholds: np.ndarray,
                 names: tuple[str, ...]) -> list[Match]:
    """One name per frame: the strongest (query, person) claims are granted first."""
    taken_people: set[int] = set()
    decided: dict[int, int | None] = {}
    pairs = [(float(scores[q, p]), q, p) for q, p in zip(*np.nonzero(passing))]
    for _score, query, person in sorted(pairs, reverse=True):
        if query in decided or person in taken_people:
            continue
        decided[query] = person
        taken_people.add(person)
    out = []
    for query, match in enumerate(results):
        person = decided.get(query)
        if person is None:
            out.append(Match(None, match.similarity, match.best_name, match.margin, match.threshold))
        else:
            out.append(Match(names[person], float(scores[query, person]), match.best_name, match.margin,
                             float(thresholds[person])))
    return out
