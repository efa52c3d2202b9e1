"""Measure the app's search index on a gallery file (issue 15): build or load time, memory,
query time and recall@1 at several candidate counts, against exact search.

    python tools/measure_ann.py GALLERY.sqlite3 [--candidates 16,32,64] [--shortlist 256]
                                [--queries 500] [--faiss] [--ef 64,128,256] [--matcher]

The index is the app's own (:class:`faceapp.recognition.ann.TemplateIndex`, faiss PQ
fast-scan, kept at ``GALLERY.faceindex``: built on the first run, loaded on the next).
Queries: a stored template moved to cosine 0.7 (as two photos of one person), as
``faceapp bench search`` makes them. recall@1: the exact nearest template is the best,
by exact similarity, of the candidates: for each count ``k``, the index's own top ``k``
("codes"), and the exact top ``k`` of its ``--shortlist`` (what the matcher re-scores).
``--faiss`` also builds faiss's HNSWFlat (M 32, efConstruction 200; ``--ef`` its search
expansions), for the comparison in the ann module's docstring. ``--matcher`` also
compares the app's decisions (the balanced preset, calibrated for the gallery): the
indexed matcher's against the exact matcher's on the same faces (the queries, and as many
strangers), and the time of one face's ``match``, per candidate count.
Galleries come from ``tools/make_large_gallery.py``.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.evaluation.search_speed import genuine_queries, synthetic_like
from faceapp.recognition import ann
from faceapp.recognition.indexed import SHORTLIST
from faceapp.storage.gallery import Gallery


def _latency(search, queries: np.ndarray) -> tuple[float, float]:
    laps = []
    for _ in range(2):
        for row in queries:
            began = time.perf_counter()
            search(row[None])
            laps.append((time.perf_counter() - began) * 1e3)
    return float(np.percentile(laps, 50)), float(np.percentile(laps, 95))


def _row_lookup(template_ids: np.ndarray):
    """A function from int64 ids (any shape, -1: none) to their rows of the matrix (-1: none)."""
    order = np.argsort(template_ids)
    ordered = template_ids[order]

    def rows(keys: np.ndarray) -> np.ndarray:
        where = np.minimum(np.searchsorted(ordered, keys), len(ordered) - 1)
        return np.where((keys >= 0) & (ordered[where] == keys), order[where], -1)

    return rows


def _best_of(found: np.ndarray, queries: np.ndarray, templates: np.ndarray, rows_of) -> np.ndarray:
    """The row of the best candidate (exact similarity) of each query's ``found`` ids (-1: none)."""
    rows = rows_of(np.asarray(found, np.int64))
    scores = np.einsum("qd,qkd->qk", queries, templates[np.maximum(rows, 0)])
    return np.take_along_axis(rows, np.argmax(np.where(rows >= 0, scores, -np.inf), axis=1)[:, None], 1)[:, 0]


def _compare_decisions(data, index, queries: np.ndarray, counts: list[int], shortlist: int) -> None:
    from faceapp.embedding.modelcard import load_card
    from faceapp.recognition.decision import DecisionRule, OpenSetCalibration, calibrate_gallery
    from faceapp.recognition.indexed import IndexedMatcher
    from faceapp.recognition.matching import Matcher

    card = load_card(None)
    began = time.perf_counter()
    chosen = calibrate_gallery(OpenSetCalibration.from_card(card.open_set), data.embeddings, data.person_index,
                               len(data.names), DecisionRule("balanced"), preset_thresholds=card.threshold_presets,
                               overrides=data.thresholds)
    print(f"calibrated in {time.perf_counter() - began:.1f} s: gallery threshold {chosen.gallery_threshold:.3f}")
    kwargs = {"gallery_threshold": chosen.gallery_threshold, "negatives": data.negatives, "negative_index": data.negative_index}
    exact = Matcher(data.embeddings, data.person_index, data.names, chosen.thresholds, **kwargs)
    # Strangers: faces of no one enrolled, drawn like the synthetic people (a Gaussian fitted to the templates).
    strangers = synthetic_like(data.embeddings[:20_000], len(queries), np.random.default_rng(2))
    faces = np.concatenate([queries, strangers])
    want = [m for block in np.array_split(faces, 20) for m in exact.match(block, unique=False)]
    exact_ms = _latency(lambda q: exact.match(q), faces[:50])
    print(f"  exact matcher: 1 face p50/p95 {exact_ms[0]:.2f}/{exact_ms[1]:.2f} ms; "
          f"{sum(m.name is not None for m in want)} of {len(want)} faces named")
    for count in counts:
        for label, asked in (("codes", count), ("shortlist", shortlist)):
            indexed = IndexedMatcher(data.embeddings, data.person_index, data.names, chosen.thresholds,
                                     template_ids=data.template_ids, index=index, candidates=count, shortlist=asked, **kwargs)
            got = [m for block in np.array_split(faces, 20) for m in indexed.match(block, unique=False)]
            parts = []
            for kind, part in (("genuine", slice(0, len(queries))), ("strangers", slice(len(queries), None))):
                pairs = list(zip(want[part], got[part]))
                named = np.mean([a.name == b.name for a, b in pairs])
                best = np.mean([a.best_name == b.best_name and abs(a.similarity - b.similarity) < 1e-5 for a, b in pairs])
                margin = np.mean([abs(a.margin - b.margin) < 1e-5 for a, b in pairs])
                parts.append(f"{kind}: same name {named:.4f}, best person and score {best:.4f}, margin {margin:.4f}")
            p50, p95 = _latency(lambda q, m=indexed: m.match(q), faces[:200])
            print(f"  indexed k={count:<3} of {label:<9} {'; '.join(parts)}; 1 face p50/p95 {p50:.3f}/{p95:.3f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gallery", type=Path)
    parser.add_argument("--candidates", default="16,32,64", help="candidate counts to try (default: 16,32,64)")
    parser.add_argument("--shortlist", type=int, default=SHORTLIST, help=f"templates asked of the index (default: {SHORTLIST})")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--faiss", action="store_true", help="also build faiss HNSWFlat (M 32, efConstruction 200)")
    parser.add_argument("--ef", default="64,128,256", help="--faiss: search expansions to try (default: 64,128,256)")
    parser.add_argument("--matcher", action="store_true", help="also compare the decisions with the exact matcher's")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with Gallery(args.gallery, read_only=True) as gallery:
        began = time.perf_counter()
        data = gallery.matrix(gallery.model_id())
        print(f"{len(data.embeddings):,} templates of {len(data.names):,} people; matrix read in {time.perf_counter() - began:.1f} s")
    templates = data.embeddings
    queries, _ = genuine_queries(templates, args.queries, np.random.default_rng(1))
    truth = np.concatenate([np.argmax(block @ templates.T, axis=1) for block in np.array_split(queries, 10)])
    exact_ms = _latency(lambda q: np.argmax(q @ templates.T, axis=1), queries[:200])
    print(f"exact numpy: {templates.nbytes / 2**20:.0f} MB, 1 query p50/p95 {exact_ms[0]:.2f}/{exact_ms[1]:.2f} ms")
    began = time.perf_counter()
    index = ann.TemplateIndex.open(templates.shape[1], data.model_id, ann.index_path(args.gallery))
    loaded = len(index)
    report = index.sync(data.template_ids, templates)
    took = time.perf_counter() - began
    index.save()
    print(f"index ({index.kind}): {'loaded' if loaded else 'built'} in {took:.1f} s ({report}), "
          f"{index.memory_bytes / 2**20:.1f} MB, maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    row_of = _row_lookup(np.asarray(data.template_ids, np.int64))
    counts = [int(v) for v in args.candidates.split(",")]
    shortlisted = index.search(queries, args.shortlist)
    for count in counts:
        codes = float(np.mean(_best_of(shortlisted[:, :count], queries, templates, row_of) == truth))
        refined = float(np.mean(_best_of(shortlisted, queries, templates, row_of) == truth))
        p50, p95 = _latency(lambda q, c=count: index.search(q, c), queries[:200])
        print(f"  k={count:<4} recall@1 of the codes' top {count}: {codes:.4f}; of the shortlist's ({args.shortlist}): "
              f"{refined:.4f}; index search of {count}: p50/p95 {p50:.3f}/{p95:.3f} ms")
    p50, p95 = _latency(lambda q: index.search(q, args.shortlist), queries[:200])
    print(f"  index search of the shortlist ({args.shortlist}): p50/p95 {p50:.3f}/{p95:.3f} ms")
    if args.matcher:
        _compare_decisions(data, index, queries, counts, args.shortlist)
    if args.faiss:
        import faiss

        began = time.perf_counter()
        graph = faiss.IndexHNSWFlat(templates.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = 200
        graph.add(templates)
        print(f"faiss HNSW: built in {time.perf_counter() - began:.1f} s, {len(faiss.serialize_index(graph)) / 2**20:.0f} MB")
        for ef in (int(v) for v in args.ef.split(",")):
            graph.hnsw.efSearch = ef
            recall = float(np.mean(_best_of(graph.search(queries, 32)[1], queries, templates, lambda keys: keys) == truth))
            p50, p95 = _latency(lambda q: graph.search(q, 32), queries[:200])
            print(f"  faiss HNSW ef={ef:<4} recall@1 of 32 candidates {recall:.4f}; p50/p95 {p50:.3f}/{p95:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
