"""A compressed index over a gallery's positive templates, keyed by template id, kept next to the gallery.

The engine: faiss's product quantizer with 4-bit fast-scan codes (``IndexPQFastScan``,
D/4 sub-quantizers of 16 centroids: 16 bytes per 128-d template), scanned in full with
SIMD look-up tables, in an ``IndexIDMap`` keyed by our 64-bit template ids. Its scores
are approximate: it only proposes candidates, which the matcher re-scores exactly over
the float32 templates (:mod:`faceapp.recognition.indexed`). Below :data:`PQ_FROM`
templates (or a dimension not divisible by 4) the engine is an exact ``IndexFlatIP``.

Why this rather than a graph (HNSW): ``faceapp bench search`` on the 2-core shared
machine, its 1M pool (4,000 real SFace embeddings of LFW, the rest drawn from a Gaussian
fitted to them) and queries (a template moved to cosine 0.7); recall@1: the exact nearest
template is the best of the candidates, re-scored exactly; one query at a time::

    1M templates                              build s     MB   1 query p50   recall@1
    exact numpy                                     -    488   19.9 ms       1
    faiss PQ32x4 fast-scan, 256 re-scored (app)   2.1     23   0.95 ms       1
    faiss HNSW M32, ef 128                        594    748   0.76 ms       0.84
    usearch HNSW M32, ef 256, 32 re-scored *     1771   1016   4.2 ms        0.97
    faiss IVF-Flat 1024 lists, 64 probed **       7.7      -   3.3 ms        0.87
    (* the previous index, an earlier run of the bench; ** a trial on a like pool, 7,707
    real embeddings of the large gallery below and the rest synthetic)

A graph takes 10 to 30 minutes to build at 1M on 2 cores and a gigabyte, and on these
queries (nearly all templates synthetic: the hardest case for it) misses the nearest
template for 3 % (usearch) to 16 % (faiss) of faces; faiss's HNSW cannot even remove a
vector. The scan reads 16 MB per query in under a millisecond and (in the trial) finds
the nearest template among its top 16 (0.88 ms), 64 or 256 every time (PQ64x4: the
same, 1.7 ms); it builds in about 2 s and removes for real. On a gallery made by
``tools/make_large_gallery.py`` (people of 4 templates), ``tools/measure_ann.py`` finds the
same: recall@1 1 at 16 to 256 candidates, 0.90-0.98 ms (README, "Galleries of a million faces").

Training: on :data:`TRAIN_SAMPLE` rows sampled (seeded) from the templates of the build,
once; a sync that finds the gallery :data:`RETRAIN_GROWTH` times larger than the rows the
quantizer was trained on (when those were fewer than the sample) rebuilds and retrains,
as does a flat index grown to :data:`PQ_FROM` rows (faiss's k-means wants 39 rows per
centroid: 624). Removal is real: a sync with templates gone encodes the gallery's rows
again with the same quantizer (about 2 s at 1M) rather than calling ``remove_ids``, which
in faiss 1.15.1 leaves removed codes in the last block of 32 that the next additions are
OR-ed into (measured: 30 of 100 added templates unfindable). Threads: faiss must not
search an index being changed, so a search waits only for a small addition (in place,
under the lock); anything else is made on a copy (``clone_index``, 15 ms at 1M), swapped in.
All faiss work runs on one OpenMP thread (see :func:`_one_thread`).

Files, next to the gallery ``G``: ``G.faceindex`` (``faiss.serialize_index``) and
``G.faceindex.json`` (format, model id, dimension, settings, engine, rows trained on, the
gallery revision it was synced to, the number of templates, a digest of their ids and the
BLAKE2 digest of ``G.faceindex``, checked before faiss reads it: faiss may crash on a
damaged file). On open, a sidecar that does not describe this model, these settings or
that very file (damaged, truncated, swapped) means a rebuild, with a warning, never a
crash. An index behind the gallery revision is not saved. An encrypted gallery's index is
kept in memory only (codes, and a small gallery's rows, are its faces). The previous
version's ``G.hnsw`` and ``G.hnsw.json`` (usearch) are never read, and are deleted once the
new index is saved (and with the gallery's files: :func:`faceapp.files.search_index_files`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.files import LEGACY_SEARCH_INDEX_SUFFIXES, PARTIAL, SEARCH_INDEX_SUFFIXES
from faceapp.files import search_index_files as search_index_files_of

logger = logging.getLogger(__name__)
# faiss's loader logs at INFO each SIMD variant it tried (one library dispatches them all now).
logging.getLogger("faiss.loader").setLevel(logging.WARNING)

FORMAT = 2
SUB_DIM = 4  # dimensions per sub-quantizer: PQ (D/4) x 4 bits, 16 bytes for SFace's 128
BITS = 4  # bits per sub-quantizer code (16 centroids): faiss's fast-scan layout
PQ_FROM = 1024  # fewer templates: an exact flat index (k-means wants >= 39 rows per centroid, 624)
TRAIN_SAMPLE = 65_536  # rows the quantizer is trained on (0.3-0.5 s on one core)
RETRAIN_GROWTH = 4  # a gallery this many times larger than the training rows (< TRAIN_SAMPLE): retrained
SEED = 0  # of the training sample
_CHECK_SAMPLE = 256  # stored codes compared with the gallery's rows' on open
_IN_PLACE = 256  # additions made to the index being searched; removals and more are made on a copy


def available() -> bool:
    """Whether faiss can be imported (the ``search`` extra: faiss-cpu)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """faiss on one OpenMP thread (this thread's setting only, restored after): with two,
    on a busy 2-core machine, every parallel region waits for a descheduled thread (a
    query up to 8 ms instead of 0.03; training 65,536 rows 2.4-8.8 s instead of 0.46)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _ids_digest(ids: np.ndarray) -> str:
    return hashlib.blake2b(np.sort(np.asarray(ids, "<i8")).tobytes(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class SyncReport:
    """What :meth:`TemplateIndex.sync` did: templates added and removed, and whether it
    started again from an empty index (``rebuilt``: other vectors than the gallery's, or
    a quantizer retrained for a gallery that outgrew it)."""

    added: int
    removed: int
    rebuilt: bool


@dataclass
class _Engine:
    """A faiss ``IndexIDMap`` (``index``) over PQ fast-scan codes (``kind`` "pq") or exact
    rows ("flat"), and how many rows its quantizer was trained on."""

    index: Any
    kind: str
    trained_rows: int

    def ids(self) -> np.ndarray:
        """int64 ``(ntotal,)``: the template ids, in the order the index stores them."""
        import faiss

        return faiss.vector_to_array(self.index.id_map).astype(np.int64, copy=False)

    def copy(self, empty: bool = False) -> _Engine:
        """A copy (``empty``: with the same quantizer, holding nothing)."""
        import faiss

        index = faiss.clone_index(self.index)
        if empty:
            index.reset()
        return _Engine(index, self.kind, self.trained_rows)


class TemplateIndex:
    """faiss PQ fast-scan (inner product = cosine on unit rows) over templates keyed by id.

    ``path``: where to keep it (``G.faceindex`` for the gallery ``G``), or None (memory
    only). :meth:`open` loads a saved one when it is sound; :meth:`sync` makes it hold
    exactly the given templates (adding and removing the difference); :meth:`search`
    proposes the template ids whose codes score highest. Searches are thread-safe against
    one :meth:`sync` (a small addition is made in place, under a lock; anything else on a
    copy, swapped in); :meth:`sync` and :meth:`save` are called one at a time.
    """

    def __init__(self, dim: int, model_id: str, path: str | os.PathLike[str] | None = None):
        self.dim, self.model_id = int(dim), str(model_id)
        self.path = None if path is None else Path(path)
        self.revision: int | None = None
        self._engine: _Engine | None = None  # None: nothing built yet
        self._lock = threading.Lock()  # held by searches and in-place changes
        self._dirty = False

    @property
    def sub_quantizers(self) -> int | None:
        """PQ sub-quantizers (D/4), or None where D is not divisible by 4 (always flat)."""
        return self.dim // SUB_DIM if self.dim % SUB_DIM == 0 else None

    @property
    def kind(self) -> str | None:
        """"pq" (compressed codes), "flat" (exact rows: a small gallery) or None (empty)."""
        engine = self._engine
        return None if engine is None else engine.kind

    def _build(self, ids: np.ndarray, embeddings: np.ndarray) -> _Engine:
        """A new index of these rows (int64 ``(N,)``, float32 ``(N, D)``), its quantizer
        trained on a seeded sample of them."""
        import faiss

        if self.sub_quantizers is None or len(ids) < PQ_FROM:
            inner, kind, trained = faiss.IndexFlatIP(self.dim), "flat", 0
        else:
            inner, kind = faiss.IndexPQFastScan(self.dim, self.sub_quantizers, BITS, faiss.METRIC_INNER_PRODUCT), "pq"
            sample = embeddings
            if len(ids) > TRAIN_SAMPLE:
                sample = embeddings[np.sort(np.random.default_rng(SEED).choice(len(ids), TRAIN_SAMPLE, replace=False))]
            with _one_thread():
                inner.train(np.ascontiguousarray(sample))
            trained = len(sample)
        index = faiss.IndexIDMap(inner)  # faiss's wrapper keeps ``inner`` alive with it
        with _one_thread():
            index.add_with_ids(embeddings, ids)
        return _Engine(index, kind, trained)

    def _outgrown(self, engine: _Engine, count: int) -> bool:
        """Whether an index of ``count`` templates should be rebuilt (and its quantizer retrained)."""
        if engine.kind == "flat":
            return self.sub_quantizers is not None and count >= PQ_FROM
        return engine.trained_rows < TRAIN_SAMPLE and count >= RETRAIN_GROWTH * engine.trained_rows

    # -- files ------------------------------------------------------------------------
    @property
    def sidecar(self) -> Path | None:
        return None if self.path is None else self.path.with_name(self.path.name + ".json")

    def _legacy_files(self) -> list[Path]:
        """The previous version's index files beside the same gallery (``G.hnsw``, ``G.hnsw.json``)."""
        suffix = SEARCH_INDEX_SUFFIXES[0]
        if self.path is None or not self.path.name.endswith(suffix):
            return []
        base = self.path.name[: -len(suffix)]
        return [self.path.with_name(base + legacy) for legacy in LEGACY_SEARCH_INDEX_SUFFIXES]

    def _settings(self) -> dict:
        return {"format": FORMAT, "library": "faiss", "metric": "ip", "model_id": self.model_id, "dim": self.dim,
                "pq": f"PQ{self.sub_quantizers}x{BITS}fs", "pq_from": PQ_FROM}

    @classmethod
    def open(cls, dim: int, model_id: str, path: str | os.PathLike[str] | None) -> TemplateIndex:
        """The index saved at ``path`` if it is sound and made for ``model_id`` and
        ``dim``, else an empty one (a warning says why, when a file was there)."""
        index = cls(dim, model_id, path)
        if path is None:
            return index
        if not index.path.exists():
            if any(file.exists() for file in index._legacy_files()):
                logger.info("search index: the previous version's %s is not read; a new index replaces it",
                            index._legacy_files()[0])
            return index
        why = index._load()
        if why is not None:
            logger.warning("search index %s is %s: it will be rebuilt", index.path, why)
            index = cls(dim, model_id, path)
            index._dirty = True
        return index

    def _load(self) -> str | None:
        """Load ``self.path``; the reason it is unusable, or None."""
        import faiss

        try:
            meta = json.loads(self.sidecar.read_text(encoding="utf-8"))
            data = self.path.read_bytes()
        except (OSError, ValueError) as error:
            return f"unreadable ({type(error).__name__}: {str(error)[:80]})"
        if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in self._settings().items()):
            return "made for another model or with other settings"
        if meta.get("file_digest") != hashlib.blake2b(data, digest_size=16).hexdigest():
            return "damaged (its contents do not match its digest)"
        try:
            loaded = faiss.deserialize_index(np.frombuffer(data, np.uint8))
        except (RuntimeError, ValueError, MemoryError) as error:  # faiss's errors on a bad file
            return f"unreadable by faiss ({str(error)[:80]})"
        kind, trained = meta.get("kind"), meta.get("trained_rows")
        inner = faiss.downcast_index(loaded.index) if isinstance(loaded, faiss.IndexIDMap) else None
        if kind == "pq":
            fits = (isinstance(inner, faiss.IndexPQFastScan) and inner.M == self.sub_quantizers and inner.nbits == BITS
                    and inner.metric_type == faiss.METRIC_INNER_PRODUCT)
        else:
            fits = kind == "flat" and isinstance(inner, faiss.IndexFlatIP)
        if not fits or loaded.d != self.dim or not isinstance(trained, int):
            return "not an index of this kind"
        engine = _Engine(loaded, kind, trained)
        keys = engine.ids()
        if len(keys) != meta.get("count") or _ids_digest(keys) != meta.get("ids_digest"):
            return "not the one its sidecar describes"
        self._engine = engine
        revision = meta.get("revision")
        self.revision = revision if isinstance(revision, int) else None
        return None

    def save(self, current_revision: Callable[[], object] | None = None) -> bool:
        """Write the index and its sidecar (atomically, each through a temporary file)
        when it changed since it was loaded or saved, then delete the previous version's
        files. False (a warning) if it could not. Not written: an empty index, and one
        behind the gallery (``current_revision()`` differs from the revision it was
        synced to: a face may have been removed meanwhile)."""
        engine = self._engine
        if self.path is None or not self._dirty or engine is None:
            return False
        if current_revision is not None:
            try:
                behind = current_revision() != self.revision
            except Exception:  # noqa: BLE001 -- a closed or unreachable gallery: do not write
                behind = True
            if behind:
                return False
        import faiss

        data = faiss.serialize_index(engine.index).tobytes()
        keys = engine.ids()
        meta = {**self._settings(), "kind": engine.kind, "trained_rows": engine.trained_rows, "revision": self.revision,
                "count": len(keys), "ids_digest": _ids_digest(keys),
                "file_digest": hashlib.blake2b(data, digest_size=16).hexdigest()}
        partial = None
        try:
            for target, payload in ((self.path, data), (self.sidecar, json.dumps(meta, indent=1).encode())):
                handle, name = tempfile.mkstemp(dir=target.parent, prefix=target.name + PARTIAL)
                partial = Path(name)
                with os.fdopen(handle, "wb") as out:
                    out.write(payload)
                os.replace(partial, target)
                partial = None
        except OSError as error:
            if partial is not None:  # never a half-written copy of the faces left behind
                with contextlib.suppress(OSError):
                    partial.unlink()
            logger.warning("search index %s could not be saved (%s); it is kept in memory", self.path, error)
            return False
        self._dirty = False
        for legacy in self._legacy_files():
            with contextlib.suppress(OSError):
                if legacy.exists():
                    legacy.unlink()
                    logger.info("search index: the previous version's %s is deleted", legacy)
        logger.info("search index %s saved: %d templates (%s)", self.path, len(keys), engine.kind)
        return True

    # -- contents -----------------------------------------------------------------------
    def __len__(self) -> int:
        engine = self._engine
        return 0 if engine is None else int(engine.index.ntotal)

    @property
    def memory_bytes(self) -> int:
        """About what the index takes in memory: codes (or rows), ids and codebooks."""
        engine = self._engine
        if engine is None:
            return 0
        count = int(engine.index.ntotal)
        if engine.kind == "flat":
            return count * (4 * self.dim + 8)
        blocks = -(-count // 32)  # fast-scan codes are packed by blocks of 32
        return blocks * 32 * self.sub_quantizers * BITS // 8 + 8 * count + 4 * self.dim * 2**BITS

    def ids(self) -> np.ndarray:
        """int64 ``(len(self),)``: the template ids held (not during a :meth:`sync`)."""
        engine = self._engine
        return np.zeros(0, np.int64) if engine is None else engine.ids()

    def holds_other_vectors(self, ids: np.ndarray, embeddings: np.ndarray) -> bool:
        """Whether a sample of the templates of int64 ``(N,)`` ``ids`` (float32 ``(N, D)``
        ``embeddings``) that the index holds are other faces there (the same ids in a
        replaced gallery file, or a gallery re-embedded by another model): their stored
        codes, decoded, differ from the gallery rows' own codes, decoded (equal to the
        last bit for the same vector; the rows themselves for a flat index). Reads only:
        searches go on meanwhile; not during a :meth:`sync`."""
        ids = np.asarray(ids, np.int64)
        engine = self._engine
        if engine is None or not engine.index.ntotal or not len(ids):
            return False
        positions = np.linspace(0, engine.index.ntotal - 1, min(_CHECK_SAMPLE, engine.index.ntotal)).astype(np.int64)
        wanted = engine.ids()[positions]  # a sample of the index's templates, and where they are in the gallery
        sorter = np.argsort(ids)
        at = sorter[np.minimum(np.searchsorted(ids, wanted, sorter=sorter), len(ids) - 1)]
        common = ids[at] == wanted
        if not common.any():
            return False
        inner = engine.index.index
        stored = inner.reconstruct_batch(np.ascontiguousarray(positions[common]))
        expected = inner.sa_decode(inner.sa_encode(np.ascontiguousarray(np.asarray(embeddings)[at[common]], np.float32)))
        return not np.allclose(stored, expected, atol=1e-5)

    def sync(self, template_ids: np.ndarray, embeddings: np.ndarray, revision: int | None = None) -> SyncReport:
        """Make the index hold exactly these templates: int64 ``(N,)`` ids and float32
        ``(N, D)`` unit rows. Adds the new ids, removes the gone ones; starts again from
        empty when the vectors it holds are no longer the gallery's, or when the gallery
        outgrew its quantizer (see the module docstring). One sync at a time."""
        ids = np.asarray(template_ids, np.int64)
        embeddings = np.ascontiguousarray(embeddings, np.float32)
        if embeddings.shape != (len(ids), self.dim):
            raise ValueError(f"embeddings {embeddings.shape} do not fit {len(ids)} ids of dimension {self.dim}")
        current = self._engine
        rebuilt = False
        if current is not None and self.holds_other_vectors(ids, embeddings):
            logger.warning("search index %s holds other vectors than the gallery: it is rebuilt", self.path or "(memory)")
            rebuilt = True
        elif current is not None and self._outgrown(current, len(ids)):
            logger.info("search index %s: %d templates outgrew its %s index: rebuilt and retrained",
                        self.path or "(memory)", len(ids), current.kind)
            rebuilt = True
        if current is None or rebuilt:
            if len(ids) > 100_000:
                logger.info("search index: building %d templates (about 2 s per million)", len(ids))
            target = self._build(ids, embeddings) if len(ids) or current is not None else None
            with self._lock:
                self._engine = target
            self._dirty = self._dirty or target is not None or revision != self.revision
            self.revision = revision
            return SyncReport(len(ids), 0, rebuilt)
        held = current.ids()
        gone = held[~np.isin(held, ids)]
        new = ~np.isin(ids, held)
        if len(gone) or new.any():
            if not len(gone) and new.sum() <= _IN_PLACE:
                with self._lock, _one_thread():
                    current.index.add_with_ids(embeddings[new], ids[new])
            else:  # on a copy; with templates gone, every row again (not remove_ids: see the module docstring)
                target = current.copy(empty=bool(len(gone)))
                with _one_thread():
                    target.index.add_with_ids(*((embeddings, ids) if len(gone) else (embeddings[new], ids[new])))
                with self._lock:
                    self._engine = target
        self._dirty = self._dirty or bool(len(gone)) or bool(new.any()) or revision != self.revision
        self.revision = revision
        return SyncReport(int(new.sum()), len(gone), False)

    def search(self, queries: np.ndarray, count: int) -> np.ndarray:
        """int64 ``(Q, count)``: the ids of the templates whose codes score highest against
        each of ``queries`` (float32 ``(Q, D)`` unit rows), best first by those approximate
        scores (re-score them exactly); -1 where the index holds fewer."""
        queries = np.ascontiguousarray(queries, np.float32).reshape(-1, self.dim)
        with self._lock:
            engine = self._engine
            if not len(queries) or engine is None or not engine.index.ntotal:
                return np.full((len(queries), count), -1, np.int64)
            with _one_thread():
                return np.asarray(engine.index.search(queries, count)[1], np.int64)


def index_path(gallery_path: str | os.PathLike[str]) -> Path:
    """Where the index of the gallery file ``gallery_path`` is kept: ``<gallery>.faceindex``."""
    return search_index_files_of(gallery_path)[0]
