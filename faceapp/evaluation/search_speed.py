"""``faceapp bench search``: nearest-template search at 10k to 1M templates, exact numpy
against approximate indexes, in one run: the app's own (faiss PQ fast-scan codes proposing
candidates that are re-scored exactly, as large galleries are matched) and, for
reference, two graph indexes (usearch HNSW, faiss HNSW) and pgvector's HNSW on a server.

Templates: real SFace embeddings of faces (LFW, when given) and, to reach the size,
synthetic unit vectors drawn from a Gaussian fitted to the real ones (their mean and
covariance, then normalised), so that their similarity distribution is the real one's
(the bench prints both distributions' percentiles). Queries: real faces' embeddings
moved away from a stored template as much as two photos of one person are (cosine about
0.7), so each query has one true nearest template.

Per size and method: build time, memory, query time p50/p95 for 1 and for 8 queries at
a time (alternating rounds, methods in turn, as everywhere in the benches), and recall@1:
the share of queries whose nearest template is the exact search's. The app's memory is its
index's (codes and ids); the float32 rows it re-scores with are the exact search's matrix,
which the matcher holds anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceapp.evaluation.speed import alternate

logger = logging.getLogger(__name__)

GENUINE_SIMILARITY = 0.7  # a query's similarity to its own template
#: HNSW settings shared by both graph libraries (the references): links per node, candidates
#: while building, while searching.
CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH = 32, 200, 128


@dataclass(frozen=True)
class SearchRow:
    size: int
    method: str
    build_s: float
    memory_mb: float
    p50_ms_1: float
    p95_ms_1: float
    p50_ms_8: float
    p95_ms_8: float
    recall_at_1: float

    def to_json(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def synthetic_like(real: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` unit vectors from the Gaussian fitted to ``real`` (unit rows), normalised."""
    mean = real.mean(axis=0)
    covariance = np.cov(real, rowvar=False) + 1e-6 * np.eye(real.shape[1])
    out = np.empty((count, real.shape[1]), np.float32)
    for start in range(0, count, 100_000):  # in blocks: 1M x 128 at once would need 1 GB of float64
        n = min(100_000, count - start)
        out[start : start + n] = _unit(rng.multivariate_normal(mean, covariance, size=n, method="cholesky"))
    return out


def genuine_queries(templates: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Queries near ``count`` random templates (similarity about :data:`GENUINE_SIMILARITY`)
    and the index of each one's template."""
    chosen = rng.choice(len(templates), count, replace=False)
    noise = rng.normal(size=(count, templates.shape[1])).astype(np.float32)
    noise -= (noise * templates[chosen]).sum(axis=1, keepdims=True) * templates[chosen]  # orthogonal to the template
    noise = _unit(noise) * np.sqrt(1 / GENUINE_SIMILARITY**2 - 1)
    return _unit(templates[chosen] + noise), chosen


class _Exact:
    name = "exact (numpy)"

    def __init__(self, templates: np.ndarray) -> None:
        self.templates = templates

    def search(self, queries: np.ndarray) -> np.ndarray:
        return np.argmax(queries @ self.templates.T, axis=1)

    @property
    def memory_mb(self) -> float:
        return self.templates.nbytes / 2**20


class _USearch:
    name = "usearch HNSW"

    def __init__(self, templates: np.ndarray) -> None:
        from usearch.index import Index

        self.index = Index(ndim=templates.shape[1], metric="ip", dtype="f32", connectivity=CONNECTIVITY,
                           expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
        self.index.add(np.arange(len(templates)), templates)

    def search(self, queries: np.ndarray) -> np.ndarray:
        found = self.index.search(queries, 1)
        return np.asarray(found.keys).reshape(len(queries), -1)[:, 0]

    @property
    def memory_mb(self) -> float:
        return self.index.memory_usage / 2**20


class _Faiss:
    name = "faiss HNSW"

    def __init__(self, templates: np.ndarray) -> None:
        import faiss

        self.index = faiss.IndexHNSWFlat(templates.shape[1], CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = EXPANSION_ADD
        self.index.hnsw.efSearch = EXPANSION_SEARCH
        self.index.add(templates)
        self._faiss = faiss

    def search(self, queries: np.ndarray) -> np.ndarray:
        return self.index.search(queries, 1)[1][:, 0]

    @property
    def memory_mb(self) -> float:
        return len(self._faiss.serialize_index(self.index)) / 2**20


class _AppIndex:
    """The app's own: :class:`faceapp.recognition.ann.TemplateIndex` (faiss PQ fast-scan, its
    settings) proposing :data:`~faceapp.recognition.indexed.SHORTLIST` templates, re-scored
    exactly over the float32 rows, as the matcher does (which keeps the best
    :data:`~faceapp.recognition.indexed.CANDIDATES` of them, then scores their people)."""

    name = "app (faiss PQ fast-scan)"

    def __init__(self, templates: np.ndarray) -> None:
        from faceapp.recognition.ann import TemplateIndex
        from faceapp.recognition.indexed import SHORTLIST

        self.templates, self.shortlist = templates, SHORTLIST
        self.index = TemplateIndex(templates.shape[1], "bench")
        self.index.sync(np.arange(len(templates)), templates)

    def search(self, queries: np.ndarray) -> np.ndarray:
        found = self.index.search(queries, self.shortlist)  # (Q, k) rows, -1 past the end
        scores = np.matmul(self.templates[np.maximum(found, 0)], queries[:, :, None])[:, :, 0]
        return found[np.arange(len(queries)), np.argmax(np.where(found >= 0, scores, -np.inf), axis=1)]

    @property
    def memory_mb(self) -> float:
        return self.index.memory_bytes / 2**20


#: Short names for ``faceapp bench search --methods``.
METHOD_KEYS = {"exact": "exact (numpy)", "usearch": "usearch HNSW", "faiss": "faiss HNSW", "app": "app (faiss PQ fast-scan)",
               "pgvector": "pgvector HNSW"}


def chosen_methods(keys: Sequence[str] | None) -> list[type]:
    """The available methods named by ``keys`` (see :data:`METHOD_KEYS`; None: all). The
    exact search always runs: it is the reference of recall@1."""
    methods = available_methods()
    if keys is None:
        return methods
    wanted = {METHOD_KEYS[k] for k in keys} | {"exact (numpy)"}
    return [m for m in methods if m.name in wanted]


def available_methods() -> list[type]:
    methods: list[type] = [_Exact]
    for module, method in (("usearch", _USearch), ("faiss", _Faiss), ("faiss", _AppIndex)):
        try:
            __import__(module)
            methods.append(method)
        except ImportError:
            logger.info("%s is not installed: its rows are left out", module)
    from faceapp.evaluation.search_pgvector import PgvectorSearch, server_available

    if server_available():
        methods.append(PgvectorSearch)
    return methods


def bench_search(real: np.ndarray, sizes: Sequence[int], *, queries: int = 200, rounds: int = 3, seed: int = 0,
                 methods: Sequence[type] | None = None) -> tuple[list[SearchRow], dict]:
    """The table for each of ``sizes`` (see the module docstring); also the similarity
    percentiles of real and synthetic templates (how alike the two are)."""
    rng = np.random.default_rng(seed)
    real = _unit(np.asarray(real, np.float32))
    biggest = max(sizes)
    synthetic = synthetic_like(real, max(0, biggest - len(real)), rng) if biggest > len(real) else real[:0]
    pool = np.concatenate([real, synthetic])[:biggest]
    sample = rng.choice(len(real), min(len(real), 2000), replace=False)
    real_scores = (real[sample] @ real[sample].T)[np.triu_indices(len(sample), 1)]
    fake = synthetic[: len(sample)] if len(synthetic) else real[sample]
    fake_scores = (fake @ fake.T)[np.triu_indices(len(fake), 1)]
    quantiles = (50, 99, 99.9)
    distribution = {"real": [round(float(np.percentile(real_scores, q)), 3) for q in quantiles],
                    "synthetic": [round(float(np.percentile(fake_scores, q)), 3) for q in quantiles],
                    "percentiles": list(quantiles)}
    rows = []
    for size in sizes:
        templates = pool[:size]
        asked, _ = genuine_queries(templates, min(queries, size), rng)
        built, build_s = {}, {}
        for method in methods or available_methods():
            start = time.perf_counter()
            built[method.name] = method(templates)
            build_s[method.name] = time.perf_counter() - start
            logger.info("%d templates: %s built in %.1f s", size, method.name, build_s[method.name])
        truth = built["exact (numpy)"].search(asked)
        times = {}
        for batch in (1, 8):
            def timed(index, batch=batch, asked=asked):
                laps = []
                for first in range(0, len(asked) - batch + 1, batch):
                    began = time.perf_counter()
                    index.search(asked[first : first + batch])
                    laps.append((time.perf_counter() - began) * 1e3)
                return laps

            per_round = alternate({name: (lambda index=index: timed(index)) for name, index in built.items()}, rounds)
            times[batch] = {name: np.concatenate([np.array(r) for r in laps]) for name, laps in per_round.items()}
        for name, index in built.items():
            recall = float(np.mean(index.search(asked) == truth))
            rows.append(SearchRow(size, name, build_s[name], index.memory_mb,
                                  float(np.percentile(times[1][name], 50)), float(np.percentile(times[1][name], 95)),
                                  float(np.percentile(times[8][name], 50)), float(np.percentile(times[8][name], 95)), recall))
        del built
    return rows, distribution


def format_search_table(rows: list[SearchRow], distribution: dict) -> str:
    header = (f"{'templates':>10} {'method':<24} {'build s':>8} {'memory MB':>10} {'1 query p50/p95 ms':>19} "
              f"{'8 queries p50/p95 ms':>21} {'recall@1':>9}")
    lines = [header, "-" * 107]
    for r in rows:
        lines.append(f"{r.size:>10,} {r.method:<24} {r.build_s:>8.2f} {r.memory_mb:>10.1f} "
                     f"{r.p50_ms_1:>9.3f} / {r.p95_ms_1:<7.3f} {r.p50_ms_8:>10.3f} / {r.p95_ms_8:<8.3f} {r.recall_at_1:>9.4f}")
    q = distribution["percentiles"]
    lines.append(f"(similarity between templates, percentiles {q}: real {distribution['real']}, "
                 f"synthetic {distribution['synthetic']}; query times: median of alternating rounds' laps)")
    return "\n".join(lines)
