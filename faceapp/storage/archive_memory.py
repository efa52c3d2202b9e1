"""The people memory in export archives (format version 3): sightings and visitors.

manifest.json gets a ``memory`` section::

    {"visitors": [{"id": int, "created_at": float}],
     "sightings": [{"person": str | null, "visitor": int | null, "source": str, "file": str | null,
                    "first_seen": float, "last_seen": float, "first_frame": int | null,
                    "last_frame": int | null, "frames": int, "best_similarity": float,
                    "quality": float, "embedding_rows": [int, int], "thumbnail": str | null}]}

with every sighting's embeddings as rows ``[start, stop)`` of ``memory/embeddings.npy``
and its crop as ``memory/crops/NNNNNN.jpg``. On import, visitors get new ids (their
sightings follow), people are matched by name, and everything is validated before the
gallery is touched; the sightings are written in the import's one transaction.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np

from faceapp.storage.archive_io import BadArchive, integer, load_npy, number, obj, read_member
from faceapp.storage.memory import NewSighting

EMBEDDINGS = "memory/embeddings.npy"
MAX_SIGHTINGS = 200_000


def memory_section(gallery) -> tuple[dict | None, list[tuple[str, bytes]]]:
    """The manifest's ``memory`` section and the members it refers to (None: nothing kept)."""
    sightings = list(reversed(gallery.sightings()))  # oldest first
    visitors = gallery.visitors()
    if not sightings and not visitors:
        return None, []
    members: list[tuple[str, bytes]] = []
    entries, blocks, start = [], [], 0
    for number_, s in enumerate(sightings, 1):
        crop = None
        if s.thumbnail is not None and s.thumbnail.startswith(b"\xff\xd8"):
            crop = f"memory/crops/{number_:06d}.jpg"
            members.append((crop, s.thumbnail))
        blocks.append(s.embeddings)
        entries.append({"person": s.person, "visitor": s.visitor, "source": s.source, "file": s.file,
                        "first_seen": s.first_seen, "last_seen": s.last_seen, "first_frame": s.first_frame,
                        "last_frame": s.last_frame, "frames": s.frames, "best_similarity": s.best_similarity,
                        "quality": s.quality, "model_id": s.model_id,
                        "embedding_rows": [start, start + len(s.embeddings)], "thumbnail": crop})
        start += len(s.embeddings)
    if blocks:
        buffer = io.BytesIO()
        np.save(buffer, np.concatenate(blocks).astype("<f4"), allow_pickle=False)
        members.append((EMBEDDINGS, buffer.getvalue()))
    return {"visitors": [{"id": v.id, "created_at": v.created_at} for v in visitors], "sightings": entries}, members


def _optional_int(value: Any, what: str) -> int | None:
    return None if value is None else integer(value, what)


def _text(value: Any, what: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 4096:
        raise BadArchive(f"{what} must be a string")
    return value


def parse_memory(section: Any, zf: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo]) -> list[NewSighting]:
    """The archive's sightings, validated (visitors as negative keys, ``-old id``)."""
    if section is None:
        return []
    section = obj(section, "memory")
    visitors = section.get("visitors", [])
    sightings = section.get("sightings", [])
    if not isinstance(visitors, list) or not isinstance(sightings, list) or len(sightings) > MAX_SIGHTINGS:
        raise BadArchive("memory.visitors and memory.sightings must be lists (of at most 200,000 sightings)")
    known = {integer(obj(v, "a visitor").get("id"), "a visitor's id") for v in visitors}
    rows = None
    if sightings:
        if EMBEDDINGS not in by_name:
            raise BadArchive(f"{EMBEDDINGS} is missing")
        rows = load_npy(zf, by_name[EMBEDDINGS])
    out = []
    for i, raw in enumerate(sightings):
        what = f"sighting {i + 1}"
        s = obj(raw, what)
        start, stop = (integer(v, f"{what}: embedding_rows") for v in (s.get("embedding_rows") or [None, None])[:2])
        if not 0 <= start < stop <= len(rows) or stop - start > 16:
            raise BadArchive(f"{what}: embedding_rows out of range")
        visitor = _optional_int(s.get("visitor"), f"{what}: visitor")
        if visitor is not None and visitor not in known:
            raise BadArchive(f"{what}: visitor {visitor} is not in memory.visitors")
        thumbnail = _text(s.get("thumbnail"), f"{what}: thumbnail", optional=True)
        if thumbnail is not None and thumbnail not in by_name:
            raise BadArchive(f"{what}: its crop {thumbnail!r} is missing")
        out.append(NewSighting(
            person=_text(s.get("person"), f"{what}: person", optional=True), visitor=None if visitor is None else -visitor,
            source=_text(s.get("source"), f"{what}: source"), first_seen=number(s.get("first_seen"), f"{what}: first_seen"),
            last_seen=number(s.get("last_seen"), f"{what}: last_seen"), frames=integer(s.get("frames"), f"{what}: frames"),
            best_similarity=number(s.get("best_similarity"), f"{what}: best_similarity"),
            quality=number(s.get("quality"), f"{what}: quality"), embeddings=rows[start:stop],
            model_id=_text(s.get("model_id"), f"{what}: model_id"), file=_text(s.get("file"), f"{what}: file", optional=True),
            first_frame=_optional_int(s.get("first_frame"), f"{what}: first_frame"),
            last_frame=_optional_int(s.get("last_frame"), f"{what}: last_frame"),
            thumbnail=None if thumbnail is None else read_member(zf, by_name[thumbnail]),
        ))
    return out
