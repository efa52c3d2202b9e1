"""Open-set matching of embeddings against the gallery: one matrix product.

Each person may have several templates; a person's score for a query is the best of
their templates' cosine similarities. The decision is open-set: the best person is
named only if their score reaches the threshold, otherwise the face is "unknown".
"""

from __future__ import annotations

import numpy as np

from faceapp.types import Match


class Matcher:
    """Matches unit embeddings against a fixed set of templates.

    ``embeddings``: float32 ``(N, D)`` unit rows; ``person_index``: int ``(N,)`` indices into
    ``names``. Build a new Matcher when the gallery changes (cheap).
    """

    def __init__(self, embeddings: np.ndarray, person_index: np.ndarray, names: tuple[str, ...] | list[str], threshold: float):
        embeddings = np.asarray(embeddings, np.float32)
        person_index = np.asarray(person_index, np.int64)
        if embeddings.ndim != 2 or len(embeddings) != len(person_index):
            raise ValueError(f"embeddings {embeddings.shape} and person_index {person_index.shape} disagree")
        if len(person_index) and (person_index.min() < 0 or person_index.max() >= len(names)):
            raise ValueError("person_index points outside names")
        order = np.argsort(person_index, kind="stable")
        self._embeddings = embeddings[order]
        sorted_index = person_index[order]
        # Start of each present person's run of rows, for np.maximum.reduceat.
        self._people, self._starts = np.unique(sorted_index, return_index=True)
        self.names = tuple(names)
        self.threshold = float(threshold)

    @classmethod
    def empty(cls, dim: int, threshold: float) -> Matcher:
        return cls(np.zeros((0, dim), np.float32), np.zeros(0, np.int64), (), threshold)

    @property
    def person_count(self) -> int:
        return len(self._people)

    def person_scores(self, queries: np.ndarray) -> np.ndarray:
        """float32 ``(Q, P)``: each query's best similarity to each present person, in
        the order of :attr:`present_names`."""
        queries = np.asarray(queries, np.float32)
        if queries.ndim != 2:
            raise ValueError(f"queries must be (Q, D), got {queries.shape}")
        if not len(self._people) or not len(queries):
            return np.zeros((len(queries), len(self._people)), np.float32)
        template_scores = queries @ self._embeddings.T
        return np.maximum.reduceat(template_scores, self._starts, axis=1)

    @property
    def present_names(self) -> tuple[str, ...]:
        return tuple(self.names[i] for i in self._people)

    def match(self, queries: np.ndarray, unique: bool = True) -> list[Match]:
        """Decide each query. With ``unique``, one name is given to at most one query
        (faces of the same frame): the strongest claim wins and the other face falls
        back to its next person above the threshold, else "unknown"."""
        scores = self.person_scores(queries)
        names = self.present_names
        results: list[Match] = []
        for row in scores:
            if not len(row):
                results.append(Match(None, 0.0, None, 0.0, self.threshold))
                continue
            order = np.argsort(-row)
            best = float(row[order[0]])
            second = float(row[order[1]]) if len(row) > 1 else 0.0
            results.append(Match(names[order[0]] if best >= self.threshold else None, best, names[order[0]], best - second, self.threshold))
        if unique and len(results) > 1:
            results = self._make_unique(scores, results)
        return results

    def _make_unique(self, scores: np.ndarray, results: list[Match]) -> list[Match]:
        names = self.present_names
        taken_people: set[int] = set()
        decided: dict[int, int | None] = {}
        pairs = [(float(scores[q, p]), q, p) for q in range(scores.shape[0]) for p in range(scores.shape[1]) if scores[q, p] >= self.threshold]
        for score, query, person in sorted(pairs, reverse=True):
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
                out.append(Match(names[person], float(scores[query, person]), match.best_name, match.margin, match.threshold))
        return out
