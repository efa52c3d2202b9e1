"""Matching against a large gallery: an approximate index proposes, the exact matcher decides.

:class:`IndexedMatcher` is a :class:`~faceapp.recognition.matching.Matcher` whose
:meth:`~IndexedMatcher.match` does not compare a face with every template. It asks the
compressed index (:class:`~faceapp.recognition.ann.TemplateIndex`: faiss PQ fast-scan
codes, approximate scores) for the ``shortlist`` templates whose codes score highest for
each face of the call, keeps the ``candidates`` nearest of them by exact similarity, takes
the people those templates belong to (the union over the call's faces), and re-scores
those people **exactly**: each one's best similarity over *all* their own templates,
their "not them" templates compared as in the exact matcher. The open-set decision
(per-person thresholds, the negatives' veto, one name per frame) then runs on those
columns, unchanged; people who were not proposed score as absent. So the decision equals
the exact matcher's whenever the person the exact matcher names, and the runner-up that
sets the margin, are among the candidates; a person the index misses can only make a
face "unknown" (or change its margin, or, when one name per frame gives their person to
another face, fall back on a lower candidate), never give it a name whose person does not
pass their own threshold.

:meth:`person_scores` (all people) stays exact.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import numpy as np

from faceapp.recognition.matching import Matcher, _reduce_max
from faceapp.types import Match

logger = logging.getLogger(__name__)

#: Templates whose people are re-scored per face (several per person are usual: a few people).
CANDIDATES = 32
#: Templates asked of the index per face (approximate scores), re-scored exactly to choose
#: the :data:`CANDIDATES`: the index's codes mis-rank templates of similar scores, so the
#: exact top 32 are taken from its top 256 (faiss's "refine"; see tools/measure_ann.py).
SHORTLIST = 256


class CandidateIndex(Protocol):
    """What :class:`IndexedMatcher` needs of an index (see :class:`~faceapp.recognition.ann.TemplateIndex`)."""

    def search(self, queries: np.ndarray, count: int) -> np.ndarray:
        """int64 ``(Q, count)``: the template ids nearest to each query, -1 where fewer."""
        ...


def _runs(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """int64: the concatenation of ``arange(starts[i], ends[i])`` over ``i``."""
    lengths = ends - starts
    if not lengths.sum():
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(int(lengths.sum()), dtype=np.int64) + offsets


class IndexedMatcher(Matcher):
    """A :class:`Matcher` whose :meth:`match` scores only the people an index proposes.

    ``template_ids``: int64 ``(N,)``, the id of each row of ``embeddings`` (the keys of
    ``index``); ``index``: a :class:`CandidateIndex` over (a superset or subset of) those
    ids; ids it returns that are not among ``template_ids`` are ignored (an index a
    moment newer or older than this gallery matrix). ``candidates``: templates per face
    whose people are re-scored; ``shortlist``: templates asked of the index per face, of
    which the ``candidates`` best by exact similarity are kept (``shortlist <= candidates``:
    the index's own order). Other arguments as :class:`Matcher`.
    """

    def __init__(self, embeddings: np.ndarray, person_index: np.ndarray, names, threshold, *,
                 template_ids: np.ndarray, index: CandidateIndex, candidates: int = CANDIDATES,
                 shortlist: int = SHORTLIST, **kwargs):
        super().__init__(embeddings, person_index, names, threshold, **kwargs)
        template_ids = np.asarray(template_ids, np.int64)
        if template_ids.shape != (len(person_index),):
            raise ValueError(f"template_ids {template_ids.shape} and person_index {np.shape(person_index)} disagree")
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self._index = index
        self.candidates, self.shortlist = int(candidates), int(shortlist)
        # Template id -> its (person-sorted) row and the column (present person) owning it, through one sorted array.
        sorted_ids = template_ids[self._order]
        self._id_order = np.argsort(sorted_ids, kind="stable")
        self._ids = sorted_ids[self._id_order]
        ends = np.append(self._starts[1:], len(sorted_ids)).astype(np.int64)
        self._ends = ends
        self._row_column = np.repeat(np.arange(len(self._starts), dtype=np.int64), ends - self._starts)
        self._negative_ends = np.append(self._negative_starts[1:], len(self._negatives)).astype(np.int64)

    @property
    def index(self) -> CandidateIndex:
        return self._index

    def candidate_rows(self, queries: np.ndarray, count: int, shortlist: int) -> np.ndarray:
        """int64 ``(Q, min(count, S))``: for each of ``queries`` (float32 ``(Q, D)``), the
        (person-sorted) rows of the ``count`` templates nearest by exact similarity among
        the ``shortlist`` the index proposes (``S``: the larger of the two), -1 where the
        index gave fewer known ones."""
        keys = np.asarray(self._index.search(queries, max(count, shortlist)), np.int64).reshape(len(queries), -1)
        where = np.minimum(np.searchsorted(self._ids, keys), len(self._ids) - 1)
        rows = np.where((keys >= 0) & (self._ids[where] == keys), self._id_order[where], -1)
        if rows.shape[1] <= count:
            return rows
        scores = np.matmul(self._embeddings[np.maximum(rows, 0)], queries[:, :, None])[:, :, 0]
        scores[rows < 0] = -np.inf
        best = np.argpartition(-scores, count - 1, axis=1)[:, :count]
        return np.take_along_axis(rows, best, axis=1)

    def candidate_columns(self, queries: np.ndarray) -> np.ndarray:
        """int64 ``(C,)``, ascending: the present people (columns) owning one of the
        ``candidates`` templates nearest to any of ``queries`` (of the index's
        ``shortlist``); asked for more (up to 16x) while they all belong to one person
        (someone with many templates), so a runner-up sets the margin and can take the
        name, as in the exact matcher."""
        count, shortlist = self.candidates, self.shortlist
        while True:
            rows = self.candidate_rows(queries, count, shortlist)
            columns = np.unique(self._row_column[rows[rows >= 0]])
            if len(columns) >= 2 or count >= 16 * self.candidates or count >= len(self._ids):
                return columns
            count, shortlist = 4 * count, 4 * shortlist

    def scores_for(self, queries: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(positive scores, vetoed)``, both ``(Q, C)``, for the people ``columns``
        (ascending) only: exactly what the exact matcher gives in those columns."""
        columns = np.asarray(columns, np.int64)
        rows = _runs(self._starts[columns], self._ends[columns])
        lengths = self._ends[columns] - self._starts[columns]
        local_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        positive = _reduce_max(queries @ self._embeddings[rows].T, local_starts)
        vetoed = np.zeros(positive.shape, bool)
        if len(self._negative_people):
            at = np.searchsorted(self._negative_people, columns)
            has = at < len(self._negative_people)
            has[has] = self._negative_people[at[has]] == columns[has]
            if has.any():
                groups = at[has]
                negative_rows = _runs(self._negative_starts[groups], self._negative_ends[groups])
                counts = self._negative_ends[groups] - self._negative_starts[groups]
                starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
                nearest = _reduce_max(queries @ self._negatives[negative_rows].T, starts)
                vetoed[:, has] = nearest >= positive[:, has]
        return positive, vetoed

    def match(self, queries: np.ndarray, unique: bool = True) -> list[Match]:
        """As :meth:`Matcher.match`, over the people the index proposes for ``queries``."""
        queries = np.asarray(queries, np.float32)
        if queries.ndim != 2:
            raise ValueError(f"queries must be (Q, D), got {queries.shape}")
        if not len(queries) or not self.person_count:
            return super().match(queries, unique)
        columns = self.candidate_columns(queries)
        if not len(columns):  # an index that knows none of these templates (being rebuilt): decide exactly
            logger.debug("the index proposed no known template: exact matching for this call")
            return super().match(queries, unique)
        scores, vetoed = self.scores_for(queries, columns)
        names = self.present_names
        return self._decide(scores, vetoed, self._thresholds[columns], tuple(names[c] for c in columns), unique)


#: From this many positive templates on, the gallery is searched through the index. Measured
#: (tools/measure_ann.py --matcher, one face, the shared 2-core machine): the exact matcher
#: takes 1.8 ms at 100k templates and 26 ms at 1M (linear: about 3.5 ms at 200k); the
#: indexed one (32 of a 256 shortlist) 0.43 ms at 100k and 1.4 ms at 1M, the same names
#: for all genuine faces and strangers at both sizes. The index would pay from well under
#: 100k, but below 200k exact matching costs a few milliseconds, is exact by construction
#: and matches a frame's faces in one product: the index is kept for where it matters.
MIN_TEMPLATES = 200_000


#: More templates than this to add (a first build, an index of the previous version or far
#: behind): built on a thread, exact matching meanwhile. A build takes about 2 s per million
#: templates on one core (training 0.3 s, encoding), so fewer are added on the spot (the
#: first matcher of a 200k gallery waits about 0.6 s for it); a one-off command (``builds``
#: False) searches exactly instead of building more.
BACKGROUND_FROM = 250_000


class IndexKeeper:
    """The recognizer's search index: opened (or built) once, then kept in step with the
    gallery matrix by :meth:`index_for` (adding and removing only the difference) and
    saved next to the gallery file after large changes.

    ``min_templates``: below it, no index (exact matching). ``candidates``, ``shortlist``:
    as :class:`IndexedMatcher`. ``background_from``: more templates to add than this are added on a
    thread; :attr:`generation` is bumped when that is done (the recognizer then rebuilds
    its matcher). Without faiss, exact matching and one warning."""

    def __init__(self, min_templates: int = MIN_TEMPLATES, candidates: int = CANDIDATES,
                 background_from: int = BACKGROUND_FROM, builds: bool = True, shortlist: int = SHORTLIST):
        self.min_templates = int(min_templates)
        self.builds = bool(builds)  # False: a one-off command, which would be gone before a long build ends
        self.candidates, self.shortlist = int(candidates), int(shortlist)
        self.background_from = int(background_from)
        self.generation = 0
        self._index = None
        self._key: tuple | None = None
        self._failed: tuple | None = None  # the key whose background build failed (not tried again)
        self._unsaved = 0
        self._warned = False
        self._lock = threading.Lock()  # one sync at a time (the live thread's and a background rebuild's)
        self._building: threading.Thread | None = None

    @property
    def building(self) -> bool:
        """Whether an index is being built on a thread (exact matching meanwhile)."""
        return self._building is not None and self._building.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background build; False if it is still running."""
        thread = self._building
        if thread is not None:
            thread.join(timeout)
        return not self.building

    def index_for(self, data, location, revision: int | None = None, current_revision=None):
        """The :class:`~faceapp.recognition.ann.TemplateIndex` holding exactly the rows of
        ``data`` (a GalleryMatrix; float32 ``(N, D)`` embeddings with int64 ``(N,)``
        template ids), kept at ``location`` (a Path, or None: in memory); None when the
        gallery is below :attr:`min_templates`, lacks template ids, faiss is missing, or
        the index is being built on a thread."""
        if len(data.embeddings) < self.min_templates or data.template_ids is None:
            return None
        with self._lock:
            return self._synced(data, location, revision, current_revision)

    def _synced(self, data, location, revision: int | None, current_revision=None):
        from faceapp.recognition import ann

        if not ann.available():
            if not self._warned:
                logger.warning("faiss is not installed (pip install 'faceapp[search]'): a gallery of %d templates "
                               "is searched exactly, slowly", len(data.embeddings))
                self._warned = True
            return None
        dim, model_id = data.embeddings.shape[1], str(data.model_id)
        key = (location, model_id, dim)
        if self.building or self._failed == key:
            return None
        if self._index is None or self._key != key:
            self._index, self._key = ann.TemplateIndex.open(dim, model_id, location), key
            self._unsaved = 0 if len(self._index) else -1  # -1: save however little changes
        if len(self._index) and self._index.holds_other_vectors(data.template_ids, data.embeddings):
            logger.warning("search index %s holds other faces than the gallery: it is rebuilt", location or "(memory)")
            self._index, self._unsaved = ann.TemplateIndex(dim, model_id, location), -1
        if len(data.template_ids) - len(self._index) > self.background_from and not self.builds:
            logger.info("no up-to-date search index beside the gallery: searched exactly (the desktop app or "
                        "'faceapp recognize' builds one)")
            self._failed = key
            return None
        if len(data.template_ids) - len(self._index) > self.background_from:
            logger.info("search index: %d templates to add, on a thread (exact matching until it is done)",
                        len(data.template_ids) - len(self._index))
            self._building = threading.Thread(target=self._sync_later, name="faceapp-index-build", daemon=True,
                                              args=(self._index, data.template_ids, data.embeddings, revision, key,
                                                    current_revision))
            self._building.start()
            return None
        self._sync(self._index, data.template_ids, data.embeddings, revision, location, current_revision)
        return self._index

    def _sync(self, index, ids: np.ndarray, embeddings: np.ndarray, revision: int | None, location,
              current_revision=None) -> None:
        """Sync ``index``; save it when due and not behind the gallery (``current_revision()``)."""
        report = index.sync(ids, embeddings, revision)
        if report.added or report.removed:
            logger.info("search index: %d template(s) added, %d removed%s", report.added, report.removed,
                        " (rebuilt)" if report.rebuilt else "")
        self._unsaved = -1 if report.rebuilt or self._unsaved < 0 else self._unsaved + report.added + report.removed
        # A saved index a little behind the gallery costs only the difference at the next start.
        due = self._unsaved < 0 or self._unsaved > max(1000, len(index) // 100)
        if due and (index.save(current_revision) or location is None):
            self._unsaved = 0

    def _sync_later(self, index, ids: np.ndarray, embeddings: np.ndarray, revision: int | None, key: tuple,
                    current_revision=None) -> None:
        try:
            self._sync(index, ids, embeddings, revision, key[0], current_revision)
        except Exception as error:  # noqa: BLE001 - a thread's last word: exact matching goes on
            logger.warning("search index could not be built (%s): the gallery is searched exactly", error)
            self._failed = key
        finally:
            with self._lock:  # not "building" any more before the new generation is seen
                self._building = None
                self.generation += 1


def build_matcher(data, thresholds: np.ndarray, gallery_threshold: float, *, keeper: IndexKeeper | None = None,
                  location=None, revision: int | None = None, current_revision=None) -> Matcher:
    """The matcher for the gallery matrix ``data`` (non-empty) with these per-person
    ``thresholds`` (float32 ``(len(data.names),)``): an :class:`IndexedMatcher` when
    ``keeper`` gives an index for it, else the exact :class:`Matcher`."""
    kwargs = {"gallery_threshold": gallery_threshold, "negatives": data.negatives, "negative_index": data.negative_index}
    index = keeper.index_for(data, location, revision, current_revision) if keeper is not None else None
    if index is None:
        return Matcher(data.embeddings, data.person_index, data.names, thresholds, **kwargs)
    return IndexedMatcher(data.embeddings, data.person_index, data.names, thresholds, template_ids=data.template_ids,
                          index=index, candidates=keeper.candidates, shortlist=keeper.shortlist, **kwargs)
