"""Make a large gallery file for speed measurements (issue 15): up to millions of templates.

    python tools/make_large_gallery.py OUT.sqlite3 --templates 1000000 [--embeddings LFW.npz | --lfw DIR]
                                       [--per-person 4] [--no-fixtures] [--seed 0]

People, in this order:

1. The two fixture people (``obama``, ``biden``), enrolled through the app's own pipeline
   from the fixture photos (so the fixture video's faces are named, as in ``faceapp bench``).
2. Real LFW people with their real SFace embeddings (``--embeddings``: an ``.npz`` with
   ``emb`` (N, 128) float32, ``names`` (N,) and ``usable`` (N,) bool; or ``--lfw DIR``:
   embedded here with the app's pipeline, a few minutes).
3. Synthetic people up to ``--templates`` templates: a centre drawn like
   :func:`faceapp.evaluation.search_speed.synthetic_like` (Gaussian fitted to the real
   embeddings, normalised) and ``--per-person`` templates around it at cosine about 0.85
   from the centre (so about 0.72 between two templates of one person, as two LFW photos).

Steps 2 and 3 write the rows with SQL into the gallery the app made (plaintext only), in
one transaction, bumping its revision as any change does: a million templates in about
15 s, where ``Gallery.import_people`` validates every template one by one.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.evaluation.search_speed import synthetic_like
from faceapp.storage.gallery import Gallery

logger = logging.getLogger("make_large_gallery")
SPREAD = 0.85  # a synthetic template's cosine to its person's centre


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def real_people(args: argparse.Namespace, recognizer) -> tuple[np.ndarray, np.ndarray]:
    """Real embeddings ``(N, D)`` and their owners' names ``(N,)``."""
    if args.embeddings:
        data = np.load(args.embeddings)
        usable = data["usable"].astype(bool)
        return _unit(data["emb"][usable]), np.asarray(data["names"])[usable]
    from faceapp.evaluation.ident import discover_people
    from faceapp.evaluation.images import embed_images
    from faceapp.vision.faces import FacePolicy

    people = discover_people(args.lfw)
    paths = [p for ps in people.values() for p in ps]
    names = np.array([name for name, ps in people.items() for _ in ps])
    result = embed_images(recognizer, paths, FacePolicy(no_face="skip"), flip=False, progress=True)
    return _unit(result.plain[result.usable]), names[result.usable]


def synthetic_people(real: np.ndarray, templates: int, per_person: int, rng: np.random.Generator) -> np.ndarray:
    """float32 ``(templates, D)`` unit rows, ``per_person`` consecutive rows per person."""
    people = -(-templates // per_person)
    centres = synthetic_like(real, people, rng)
    out = np.empty((people * per_person, real.shape[1]), np.float32)
    for start in range(0, people, 50_000):
        block = centres[start : start + 50_000]
        for k in range(per_person):
            noise = rng.normal(size=block.shape).astype(np.float32)
            noise -= (noise * block).sum(axis=1, keepdims=True) * block
            noise = _unit(noise) * np.sqrt(1 / SPREAD**2 - 1)
            out[(start * per_person) + k : (start + len(block)) * per_person : per_person] = _unit(block + noise)
    return out[:templates]


def bulk_insert(path: Path, model_id: str, rows: list[tuple[str, np.ndarray]]) -> int:
    """Append people (name, float32 ``(K, D)`` templates) to the gallery at ``path`` in one transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        next_id = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM templates").fetchone()[0]) + 1
        now = time.time()
        people, templates = [], []
        first_person = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM people").fetchone()[0]) + 1
        for person_id, (name, embeddings) in enumerate(rows, first_person):
            people.append((person_id, name, now))
            for row in np.asarray(embeddings, "<f4"):
                templates.append((next_id, person_id, row.tobytes(), len(row), model_id, 1.0, None, "synthetic", now, "positive"))
                next_id += 1
        conn.executemany("INSERT INTO people(id, name, created_at) VALUES (?, ?, ?)", people)
        conn.executemany("INSERT INTO templates(id, person_id, embedding, dim, model_id, quality, thumbnail, source, "
                         "created_at, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", templates)
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
        conn.execute("COMMIT")
        return len(templates)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--templates", type=int, default=1_000_000, help="templates in all (default: 1000000)")
    parser.add_argument("--per-person", type=int, default=4, help="templates per synthetic person (default: 4)")
    parser.add_argument("--embeddings", type=Path, help="real embeddings (.npz with emb, names, usable)")
    parser.add_argument("--lfw", type=Path, help="embed the real faces of this folder instead")
    parser.add_argument("--no-fixtures", action="store_true", help="leave out the two fixture people")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.out.exists():
        parser.error(f"{args.out} exists; choose a new file")
    from faceapp.paths import fixtures_dir, lfw_dir
    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.recognition.pipeline import Recognizer

    args.lfw = args.lfw or lfw_dir()
    began = time.perf_counter()
    recognizer = Recognizer.create()
    model_id = recognizer.embedder.model_id
    with Gallery(args.out) as gallery:
        if not args.no_fixtures:
            for person in ("obama", "biden"):
                samples = samples_from_files(recognizer, sorted((fixtures_dir() / person).glob("*.jpg")))
                gallery.add_person(person, [s.template(model_id) for s in samples])
        enrolled = sum(p.template_count for p in gallery.people())
        taken = {p.name.casefold() for p in gallery.people()}
    real, owners = real_people(args, recognizer)
    rng = np.random.default_rng(args.seed)
    people: list[tuple[str, np.ndarray]] = []
    room = max(0, args.templates - enrolled)
    for name in dict.fromkeys(owners):
        if room <= 0:
            break
        if name.casefold() in taken:
            continue
        own = real[owners == name][:room]
        people.append((name.replace("_", " "), own))
        room -= len(own)
    synthetic = synthetic_people(real, room, args.per_person, rng) if room else real[:0]
    people += [(f"synthetic {i:07d}", synthetic[start : start + args.per_person])
               for i, start in enumerate(range(0, len(synthetic), args.per_person))]
    written = bulk_insert(args.out, model_id, people)
    logger.info("%s: %d templates of %d people in %.0f s", args.out, enrolled + written, len(people) + 2 * (not args.no_fixtures),
                time.perf_counter() - began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
