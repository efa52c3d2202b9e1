"""Deterministic gallery data shared by the stress scripts (``stress.py``, ``fuzz_inputs.py``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from faceapp.storage.crypto import KdfParams
from faceapp.storage.gallery import Gallery, NewTemplate

MODEL = "stress-model"
DIM = 128
FAST_KDF = KdfParams(n=2**10, r=8, p=1)  # cheap scrypt: the stress is on SQLite, not the KDF
PASSPHRASES = ("old secret", "new secret")
JPEG = b"\xff\xd8\xff\xe0"
HANG_LIMIT_S = 10.0


def templates_for(seed: int, count: int, thumb_bytes: int = 3000) -> list[NewTemplate]:
    """``count`` templates made from ``seed`` (same seed -> same bytes, in any process)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        v = rng.standard_normal(DIM).astype(np.float32)
        thumb = JPEG + rng.bytes(thumb_bytes) if i % 2 == 0 else None
        out.append(NewTemplate(embedding=v / np.linalg.norm(v), model_id=MODEL, thumbnail=thumb, source=f"s{seed}"))
    return out


State = dict[str, tuple[tuple[bytes, bytes | None], ...]]


SIGHTINGS = "\x00sightings"  # the state's entry for the people memory (no person has this name)


def logical_state(g: Gallery) -> State:
    """name -> sorted (embedding bytes, thumbnail) of every template (ids and times left
    out), and under :data:`SIGHTINGS` every sighting as (person, "visitor" or "",
    source, frames, thumbnail)."""
    people, templates = g.snapshot()
    by_id: dict[int, list] = {p.id: [] for p in people}
    for t in templates:
        by_id[t.person_id].append((t.embedding.astype("<f4").tobytes(), t.thumbnail))
    state = {p.name: tuple(sorted(by_id[p.id], key=repr)) for p in people}
    sightings = g.sightings()
    if sightings:
        state[SIGHTINGS] = sighting_rows(sightings)
    return state


def sighting_rows(sightings) -> tuple:
    return tuple(sorted(((s.person or "", "visitor" if s.visitor else "", s.source, s.frames, s.thumbnail)
                         for s in sightings), key=repr))


def sightings_for(seed: int, people: list[str], count: int) -> list:
    """``count`` sightings made from ``seed``: of ``people`` in turn, then unknowns of one
    new visitor (key -1); their source is ``rec{seed}``."""
    from faceapp.storage.memory import NewSighting

    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        v = rng.standard_normal((2, DIM)).astype(np.float32)
        person = people[i % len(people)] if people and i % 2 == 0 else None
        out.append(NewSighting(person, None if person else -1, f"rec{seed}", 1.8e9 + i, 1.8e9 + i + 1, 2 + i, 0.3, 0.5,
                               v / np.linalg.norm(v, axis=1, keepdims=True), MODEL,
                               thumbnail=JPEG + rng.bytes(2000) if i % 3 else None))
    return out
