"""An HNSW index over a gallery's positive templates, keyed by template id, kept next to the gallery.

Why usearch, and these settings: measured with ``tools/measure_ann.py`` on galleries made
by ``tools/make_large_gallery.py`` (real LFW SFace embeddings, then synthetic people of 4
templates drawn from a Gaussian fitted to them), on this project's shared 2-core machine;
1000 queries, each a stored template moved to cosine 0.7; recall@1: the index's nearest
template is the exact nearest. Connectivity 32, expansion 200 while building; p50 of one
query asking 32 candidates::

    100k templates        build s     MB   ef 64            ef 128           ef 256
    exact numpy                -      49   1.03 ms, recall 1
    usearch (f32)            54.3    113   0.58 ms, 0.998   1.03 ms, 1.000   1.92 ms, 1.000
    faiss HNSWFlat           29.9     75   0.24 ms, 0.998   0.42 ms, 1.000   0.77 ms, 1.000

    1M templates (usearch only: one build)
    exact numpy                -     488   20.6 ms, recall 1 (the whole exact matcher: 26 ms per face)
    usearch (f32)          1569 *   1016   ef 128: 2.15 ms, 0.974   ef 256: 3.93 ms, 0.995   ef 320: 4.98 ms, 0.999
    (* 26 minutes while the machine was shared; 45 CPU minutes)

faiss answers about 2.4x faster at equal recall, builds 1.8x faster and takes a third
less memory. usearch is chosen anyway because a gallery changes in place: it keys
vectors by our 64-bit template ids, removes them (``remove``: no rebuild), adds to a
loaded index and saves to and restores from bytes; faiss's HNSW cannot remove at all
(``remove_ids not implemented``), so every deletion would stay as a dead candidate
until a full rebuild (26 minutes at 1M), and ids would need a mapping of our own. At
ef 256 usearch meets the target (1M templates: p50 under 5 ms, recall@1 >= 99.5 %).
Lower connectivity or compressed vectors (M=16 with f16 or i8 at 100k: recall@1 0.93
and 0.92 at ef 128) lose too much recall. The matcher re-scores the candidates' people
exactly (:mod:`faceapp.recognition.indexed`), so only whether the right person is among
the candidates matters, not the index's own scores.

Files, next to the gallery ``G``: ``G.hnsw`` (usearch's own format) and ``G.hnsw.json``
(format, model id, dimension, settings, the gallery revision it was synced to, the
number of templates and a digest of their ids, and the BLAKE2 digest of ``G.hnsw``).
On open, a sidecar that does not describe this model, these settings or that very file
(damaged, truncated, swapped) means a rebuild, with a warning, never a crash. An
encrypted gallery's index is kept in memory only (the file would hold its embeddings in clear).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceapp.files import PARTIAL
from faceapp.files import search_index_files as search_index_files_of

logger = logging.getLogger(__name__)

FORMAT = 1
CONNECTIVITY = 32  # links per node ("M")
BUILD_EXPANSION = 200  # candidates kept while inserting ("efConstruction")
#: Candidates kept while searching ("ef"): recall@1 99.5 % at 1M templates, 3.9 ms (see above).
SEARCH_EXPANSION = 256
_CHECK_SAMPLE = 256  # stored vectors compared with the gallery's on open
_IN_PLACE = 256  # changes made to the index being searched; more are made on a copy, then swapped in


def available() -> bool:
    """Whether usearch can be imported (the ``search`` extra)."""
    try:
        import usearch.index  # noqa: F401
    except ImportError:
        return False
    return True


def _ids_digest(ids: np.ndarray) -> str:
    return hashlib.blake2b(np.sort(np.asarray(ids, "<i8")).tobytes(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class SyncReport:
    """What :meth:`TemplateIndex.sync` did: templates added and removed, and whether it
    started again from an empty index (``rebuilt``)."""

    added: int
    removed: int
    rebuilt: bool


class TemplateIndex:
    """HNSW (usearch, inner product = cosine on unit rows) over templates keyed by id.

    ``path``: where to keep it (``G.hnsw`` for the gallery ``G``), or None (memory only).
    :meth:`open` loads a saved one when it is sound; :meth:`sync` makes it hold exactly
    the given templates (adding and removing the difference); :meth:`search` finds the
    nearest template ids. Thread-safe: a search waits only for a small in-place change
    (a few milliseconds); larger ones are made on a copy, swapped in when done.
    """

    def __init__(self, dim: int, model_id: str, path: str | os.PathLike[str] | None = None, *,
                 expansion: int = SEARCH_EXPANSION):
        self.dim, self.model_id = int(dim), str(model_id)
        self.path = None if path is None else Path(path)
        self._expansion = int(expansion)
        self.revision: int | None = None
        self._index = self._empty()
        self._lock = threading.Lock()  # held by searches and in-place changes
        self._dirty = False
        # usearch's remove() only marks a vector deleted: an index that had faces removed
        # still holds them, so it is never written (the file is deleted; a fresh build is).
        self._tainted = False

    def _empty(self):
        from usearch.index import Index

        return Index(ndim=self.dim, metric="ip", dtype="f32", connectivity=CONNECTIVITY,
                     expansion_add=BUILD_EXPANSION, expansion_search=self._expansion)

    @property
    def expansion(self) -> int:
        """Candidates kept while searching ("ef"): more is slower and finds the nearest more often."""
        return self._expansion

    @expansion.setter
    def expansion(self, value: int) -> None:
        self._expansion = int(value)
        self._index.expansion_search = self._expansion

    # -- files ------------------------------------------------------------------------
    @property
    def sidecar(self) -> Path | None:
        return None if self.path is None else self.path.with_name(self.path.name + ".json")

    def _settings(self) -> dict:
        return {"format": FORMAT, "library": "usearch", "metric": "ip", "dtype": "f32", "model_id": self.model_id,
                "dim": self.dim, "connectivity": CONNECTIVITY, "expansion_add": BUILD_EXPANSION}

    @classmethod
    def open(cls, dim: int, model_id: str, path: str | os.PathLike[str] | None, **kwargs) -> TemplateIndex:
        """The index saved at ``path`` if it is sound and made for ``model_id`` and
        ``dim``, else an empty one (a warning says why, when a file was there)."""
        index = cls(dim, model_id, path, **kwargs)
        if path is None or not index.path.exists():
            return index
        why = index._load()
        if why is not None:
            logger.warning("search index %s is %s: it will be rebuilt", index.path, why)
            index = cls(dim, model_id, path, **kwargs)
            index._dirty = True
        return index

    def _load(self) -> str | None:
        """Load ``self.path``; the reason it is unusable, or None."""
        from usearch.index import Index

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
            loaded = Index.restore(data)
        except (RuntimeError, ValueError, MemoryError) as error:  # usearch's errors on a bad file
            return f"unreadable by usearch ({str(error)[:80]})"
        if loaded is None or loaded.ndim != self.dim:
            return "unreadable by usearch"
        keys = np.asarray(loaded.keys, np.int64)
        if len(keys) != meta.get("count") or _ids_digest(keys) != meta.get("ids_digest"):
            return "not the one its sidecar describes"
        loaded.expansion_search, loaded.expansion_add = self._expansion, BUILD_EXPANSION
        self._index = loaded
        revision = meta.get("revision")
        self.revision = revision if isinstance(revision, int) else None
        return None

    def save(self, current_revision: Callable[[], object] | None = None) -> bool:
        """Write the index and its sidecar (atomically, each through a temporary file)
        when it changed since it was loaded or saved. False (a warning) if it could not.
        Not written: an index that had faces removed (it would keep them: its file is
        deleted instead), and one behind the gallery (``current_revision()`` differs from
        the revision it was synced to: a face may have been removed meanwhile)."""
        if self.path is None or not self._dirty:
            return False
        if self._tainted:
            for file in (self.path, self.sidecar):
                with contextlib.suppress(OSError):
                    file.unlink(missing_ok=True)
            logger.info("search index %s: faces were removed from it, so it is not saved (rebuilt at the next start)",
                        self.path)
            return False
        if current_revision is not None:
            try:
                behind = current_revision() != self.revision
            except Exception:  # noqa: BLE001 -- a closed or unreachable gallery: do not write
                behind = True
            if behind:
                return False
        data = bytes(self._index.save())
        keys = np.asarray(self._index.keys, np.int64)
        meta = {**self._settings(), "revision": self.revision, "count": len(keys), "ids_digest": _ids_digest(keys),
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
        logger.info("search index %s saved: %d templates", self.path, len(keys))
        return True

    # -- contents -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index)

    @property
    def memory_bytes(self) -> int:
        """What the index takes in memory (graph and vectors)."""
        return int(self._index.memory_usage)

    def ids(self) -> np.ndarray:
        """int64 ``(len(self),)``: the template ids held."""
        return np.asarray(self._index.keys, np.int64)

    def holds_other_vectors(self, ids: np.ndarray, embeddings: np.ndarray) -> bool:
        """Whether a sample of the templates of int64 ``(N,)`` ``ids`` (float32 ``(N, D)``
        ``embeddings``) that the index holds are other faces there (the same ids in a
        replaced gallery file, or a gallery re-embedded by another model)."""
        ids = np.asarray(ids, np.int64)
        common = np.flatnonzero(np.isin(ids, np.asarray(self._index.keys, np.int64)))
        if not len(common):
            return False
        sample = common[np.linspace(0, len(common) - 1, min(_CHECK_SAMPLE, len(common))).astype(np.int64)]
        stored = np.asarray(self._index.get(ids[sample].astype(np.uint64)), np.float32).reshape(len(sample), -1)
        return not np.allclose(stored, np.asarray(embeddings, np.float32)[sample], atol=1e-5)

    def sync(self, template_ids: np.ndarray, embeddings: np.ndarray, revision: int | None = None) -> SyncReport:
        """Make the index hold exactly these templates: int64 ``(N,)`` ids and float32
        ``(N, D)`` unit rows. Adds the new ids, removes the gone ones; starts again from
        empty when the vectors it holds are no longer the gallery's. One sync at a time."""
        ids = np.asarray(template_ids, np.int64)
        embeddings = np.ascontiguousarray(embeddings, np.float32)
        if embeddings.shape != (len(ids), self.dim):
            raise ValueError(f"embeddings {embeddings.shape} do not fit {len(ids)} ids of dimension {self.dim}")
        current = self._index
        held = np.asarray(current.keys, np.int64)
        rebuilt = bool(len(held)) and self.holds_other_vectors(ids, embeddings)
        if rebuilt:
            logger.warning("search index %s holds other vectors than the gallery: it is rebuilt", self.path or "(memory)")
            held = held[:0]
        gone = held[~np.isin(held, ids)]
        new = ~np.isin(ids, held)
        changes = len(gone) + int(new.sum())
        if changes or rebuilt:
            if new.sum() > 10_000:
                logger.info("search index: adding %d templates (about a minute per 100k on 2 cores)", int(new.sum()))
            in_place = not rebuilt and changes <= _IN_PLACE
            target = current if in_place else (self._empty() if rebuilt else current.copy())
            self._tainted = (self._tainted and not rebuilt) or bool(len(gone))
            with self._lock if in_place else contextlib.nullcontext():
                if len(gone):
                    target.remove(gone.astype(np.uint64))
                if new.any():
                    target.add(ids[new].astype(np.uint64), embeddings[new], log=False)
            with self._lock:
                self._index = target
        self._dirty = self._dirty or bool(changes) or rebuilt or revision != self.revision
        self.revision = revision
        return SyncReport(int(new.sum()), len(gone), rebuilt)

    def search(self, queries: np.ndarray, count: int) -> np.ndarray:
        """int64 ``(Q, count)``: the ids of the templates nearest to each of ``queries``
        (float32 ``(Q, D)`` unit rows), best first; -1 where the index holds fewer."""
        queries = np.ascontiguousarray(queries, np.float32).reshape(-1, self.dim)
        out = np.full((len(queries), count), -1, np.int64)
        with self._lock:
            if not len(queries) or not len(self._index):
                return out
            found = self._index.search(queries, count)
        if hasattr(found, "counts"):  # BatchMatches: sentinel keys past each query's count
            keys = np.asarray(found.keys).reshape(len(queries), -1)[:, :count].astype(np.int64)
            valid = np.arange(keys.shape[1])[None, :] < np.asarray(found.counts).reshape(-1, 1)
            out[:, : keys.shape[1]] = np.where(valid, keys, -1)
        else:  # one query: Matches, only the valid keys
            keys = np.asarray(found.keys, np.int64).reshape(-1)[:count]
            out[0, : len(keys)] = keys
        return out


def index_path(gallery_path: str | os.PathLike[str]) -> Path:
    """Where the index of the gallery file ``gallery_path`` is kept: ``<gallery>.hnsw``."""
    return search_index_files_of(gallery_path)[0]
