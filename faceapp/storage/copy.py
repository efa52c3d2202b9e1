"""Copying a whole gallery to another one, between engines in either direction (a file
to a PostgreSQL server, a server to a file, or file to file): people, templates ("not
them" faces too), own thresholds, sightings, unknown visitors and the privacy settings.

The target must be empty (a new file, or a database with no gallery or an empty one):
everything it receives, its settings (embeddings-only mode, retention, and the source's
encryption, under the same passphrase) included, is written in ONE transaction, so a
failure leaves it as it was. Visitors get new numbers (their sightings
follow them), as in an import.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from faceapp.errors import GalleryError
from faceapp.storage.memory import NewSighting
from faceapp.storage.records import NewTemplate, PersonRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopySummary:
    people: int
    templates: int
    sightings: int
    encrypted: bool

    def line(self, source: str, target: str) -> str:
        return (f"copied {self.people} people, {self.templates} template(s) and {self.sightings} sighting(s) from "
                f"{source} to {target}" + (" (encrypted with the same passphrase)" if self.encrypted else ""))


def read_all(gallery) -> tuple[list[PersonRecord], list[NewSighting]]:
    """Everything of ``gallery`` as an import would take it (one snapshot for the people)."""
    people, templates = gallery.snapshot()
    by_person: dict[int, list[NewTemplate]] = {}
    for t in templates:
        by_person.setdefault(t.person_id, []).append(
            NewTemplate(t.embedding, t.model_id, t.quality, t.thumbnail, t.source, t.created_at, t.kind))
    records = [PersonRecord(p.name, p.created_at, tuple(by_person.get(p.id, ())), p.threshold) for p in people]
    sightings = [
        NewSighting(person=s.person, visitor=None if s.visitor is None else -int(s.visitor), source=s.source,
                    first_seen=s.first_seen, last_seen=s.last_seen, frames=s.frames, best_similarity=s.best_similarity,
                    quality=s.quality, embeddings=s.embeddings, model_id=s.model_id, file=s.file,
                    first_frame=s.first_frame, last_frame=s.last_frame, thumbnail=s.thumbnail)
        for s in reversed(gallery.sightings())  # oldest first, as they were recorded
    ]
    return records, sightings


def copy_gallery(source, target, *, passphrase: str | None = None) -> CopySummary:
    """Copy ``source`` into the empty ``target`` (both open :class:`Gallery` objects).
    ``passphrase``: the source's, when it is encrypted (the target is then encrypted
    with it). Everything, the target's emptiness check, settings and key included, is
    ONE transaction on the target: GalleryError, with the target unchanged, if it is not
    empty or anything fails."""
    from faceapp.storage import crypto

    if source.encrypted and not passphrase:
        raise GalleryError("the source gallery is encrypted: its passphrase is needed to encrypt the copy")
    records, sightings = read_all(source)
    prepared = target._prepare_import(records)
    checked = target._check_sightings(sightings)
    encrypting = source.encrypted and not target.encrypted
    if encrypting:
        params = crypto.DEFAULT_KDF.with_new_salt()
        key = crypto.derive_key(passphrase, params)
        key_check = crypto.make_key_check(key)
    old_key = target._key
    try:
        with target._write(check_key=not encrypting) as conn:
            if any(conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in ("people", "sightings", "visitors")):
                raise GalleryError(f"the target {target.path} is not empty: copy into a new gallery "
                                   "(or use gallery export and import to add people to one)")
            target._meta_set(conn, "embeddings_only", 1 if source.embeddings_only else 0)
            target._meta_set(conn, "retention_days", float(source.retention_days))
            if encrypting:
                target._meta_set(conn, "kdf", params.to_json())
                target._meta_set(conn, "key_check", key_check)
                target._key = key  # the rows below are sealed with it
            target._import_in(conn, prepared, checked, "error")
    except BaseException:
        target._key = old_key
        raise
    if encrypting:
        target._key_check = key_check
    summary = CopySummary(len(records), sum(len(r.templates) for r in records), len(sightings), target.encrypted)
    logger.info("%s", summary.line(str(source.path), str(target.path)))
    return summary
