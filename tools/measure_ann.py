"""Measure the app's search index on a gallery file (issue 15): build or load time, memory,
query time and recall@1 at several search expansions (ef), against exact search.

    python tools/measure_ann.py GALLERY.sqlite3 [--ef 64,128,160,256] [--queries 500] [--faiss] [--matcher]

The index is the app's own (:class:`faceapp.recognition.ann.TemplateIndex`, kept at
``GALLERY.hnsw``: built on the first run, loaded on the next). Queries: a stored template
moved to cosine 0.7 (as two photos of one person), as ``faceapp bench search`` makes them;
recall@1: the index's nearest template is the exact nearest one. ``--faiss`` also builds
faiss's HNSWFlat with the same settings, for the comparison in the ann module's docstring.
``--matcher`` also compares the app's decisions (the balanced preset, calibrated for the
gallery): the indexed matcher's against the exact matcher's on the same faces (the
queries, and as many strangers), and the time of one face's ``match``.
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
from faceapp.storage.gallery import Gallery


def _latency(search, queries: np.ndarray) -> tuple[float, float]:
    laps = []
    for _ in range(2):
        for row in queries:
            began = time.perf_counter()
            search(row[None])
            laps.append((time.perf_counter() - began) * 1e3)
    return float(np.percentile(laps, 50)), float(np.percentile(laps, 95))


def _compare_decisions(data, index, queries: np.ndarray, efs: list[int]) -> None:
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
    indexed = IndexedMatcher(data.embeddings, data.person_index, data.names, chosen.thresholds,
                             template_ids=data.template_ids, index=index, **kwargs)
    # Strangers: faces of no one enrolled, drawn like the synthetic people (a Gaussian fitted to the templates).
    strangers = synthetic_like(data.embeddings[:20_000], len(queries), np.random.default_rng(2))
    faces = np.concatenate([queries, strangers])
    want = [m for block in np.array_split(faces, 20) for m in exact.match(block, unique=False)]
    exact_ms = _latency(lambda q: exact.match(q), faces[:50])
    print(f"  exact matcher: 1 face p50/p95 {exact_ms[0]:.2f}/{exact_ms[1]:.2f} ms; "
          f"{sum(m.name is not None for m in want)} of {len(want)} faces named")
    for ef in efs:
        index.expansion = ef
        got = indexed.match(faces, unique=False)
        parts = []
        for label, part in (("genuine", slice(0, len(queries))), ("strangers", slice(len(queries), None))):
            pairs = list(zip(want[part], got[part]))
            named = np.mean([a.name == b.name for a, b in pairs])
            best = np.mean([a.best_name == b.best_name and abs(a.similarity - b.similarity) < 1e-5 for a, b in pairs])
            parts.append(f"{label}: same name {named:.4f}, same best person and score {best:.4f}")
        p50, p95 = _latency(lambda q: indexed.match(q), faces[:200])
        print(f"  indexed ef={ef:<4} {'; '.join(parts)}; 1 face p50/p95 {p50:.3f}/{p95:.3f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gallery", type=Path)
    parser.add_argument("--ef", default="64,128,160,256", help="search expansions to try (default: 64,128,160,256)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--faiss", action="store_true", help="also build faiss HNSWFlat (same settings)")
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
    index.save()
    took = time.perf_counter() - began
    print(f"usearch: {'loaded' if loaded else 'built'} in {took:.1f} s ({report}), "
          f"{index.memory_bytes / 2**20:.0f} MB, maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    row_of = {int(t): i for i, t in enumerate(data.template_ids)}
    efs = [int(v) for v in args.ef.split(",")]
    for ef in efs:
        index.expansion = ef
        found = index.search(queries, 1)[:, 0]
        recall = float(np.mean([row_of.get(int(k), -1) == t for k, t in zip(found, truth)]))
        p50, p95 = _latency(lambda q: index.search(q, 32), queries[:200])
        print(f"  usearch ef={ef:<4} recall@1 {recall:.4f}  1 query (32 candidates) p50/p95 {p50:.3f}/{p95:.3f} ms")
    if args.matcher:
        _compare_decisions(data, index, queries, efs)
    if args.faiss:
        import faiss

        began = time.perf_counter()
        flat = faiss.IndexHNSWFlat(templates.shape[1], ann.CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
        flat.hnsw.efConstruction = ann.BUILD_EXPANSION
        flat.add(templates)
        print(f"faiss: built in {time.perf_counter() - began:.1f} s, {len(faiss.serialize_index(flat)) / 2**20:.0f} MB")
        for ef in efs:
            flat.hnsw.efSearch = ef
            recall = float(np.mean(flat.search(queries, 1)[1][:, 0] == truth))
            p50, p95 = _latency(lambda q: flat.search(q, 32), queries[:200])
            print(f"  faiss ef={ef:<4} recall@1 {recall:.4f}  1 query (32 candidates) p50/p95 {p50:.3f}/{p95:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
