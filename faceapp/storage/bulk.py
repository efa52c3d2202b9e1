"""The gallery's operations on many rows at once, each in ONE transaction: moving the
whole gallery to another model, and importing people (a backup, another gallery)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from faceapp.errors import GalleryError
from faceapp.storage.records import (
    ImportSummary,
    NewTemplate,
    OnConflict,
    PersonRecord,
    TemplateRow,
    finite_number,
    normalize_name,
    prepare_all,
    prepare_all_consistent,
    timestamp,
)

logger = logging.getLogger(__name__)


class BulkMixin:
    """Re-embedding and importing, for :class:`~faceapp.storage.gallery.Gallery`."""

    def replace_embeddings(
        self, embeddings: dict[int, np.ndarray], model_id: str, remove: Sequence[int] = ()
    ) -> None:
        """Switch the whole gallery to another model in ONE transaction.

        ``embeddings``: ``{template id: float32 (D,) embedding from model_id}`` for some
        templates; ``remove``: the ids of all the others, which are deleted (people stay,
        possibly with no template). Every stored template must be named exactly once,
        else GalleryError (the gallery changed meanwhile) and nothing is written.
        """
        ids = [int(i) for i in embeddings]
        rows = prepare_all([NewTemplate(embeddings[i], model_id) for i in embeddings])
        removed = {int(i) for i in remove}
        if removed & set(ids):
            raise GalleryError("a template cannot be both re-embedded and removed")
        with self._write() as conn:
            stored = {int(r[0]) for r in conn.execute("SELECT id FROM templates")}
            if stored != set(ids) | removed:
                raise GalleryError(f"gallery {self._path} changed while re-embedding; run it again")
            conn.executemany(
                "UPDATE templates SET embedding = ?, dim = ?, model_id = ? WHERE id = ?",
                [(self._seal(r.blob, i, "embedding"), r.dim, r.model_id, i) for i, r in zip(ids, rows)],
            )
            self._templates_written(conn, [(i, r.blob) for i, r in zip(ids, rows)])
            conn.executemany("DELETE FROM templates WHERE id = ?", [(i,) for i in sorted(removed)])
        self._forget_search_index()
        if removed:
            self.wipe_free_space()
        logger.info("gallery: %d template(s) re-embedded with %r, %d removed", len(ids), model_id, len(removed))

    def import_people(self, records: Sequence[PersonRecord], *, on_conflict: OnConflict = "error",
                      sightings: Sequence = ()) -> ImportSummary:
        """Add many people (keeping their created_at times) in ONE transaction.

        ``on_conflict`` decides what happens to a name already in the gallery: "error"
        (GalleryError, nothing written), "skip" (leave the existing person alone) or
        "merge" (append the templates to the existing person). Every template is validated
        and must match the gallery's model_id and dim, whatever ``on_conflict`` says.
        ``sightings`` (NewSighting) are stored in the same transaction (not twice)."""
        if on_conflict not in ("merge", "skip", "error"):
            raise GalleryError(f"on_conflict must be 'merge', 'skip' or 'error', not {on_conflict!r}")
        prepared = self._prepare_import(records)
        checked = self._check_sightings(sightings)
        with self._write() as conn:
            summary = self._import_in(conn, prepared, checked, on_conflict)
        logger.info("gallery: imported %s", summary)
        return summary

    def _prepare_import(self, records: Sequence[PersonRecord]) -> list[tuple[str, float, list[TemplateRow], float | None]]:
        """The records validated (names, times, templates, thresholds), before any transaction."""
        prepared: list[tuple[str, float, list[TemplateRow], float | None]] = []
        seen: set[str] = set()
        all_rows: list[TemplateRow] = []
        for rec in records:
            if not isinstance(rec, PersonRecord):
                raise GalleryError(f"expected a PersonRecord, got {type(rec).__name__}")
            key = normalize_name(rec.name)
            if key in seen:
                raise GalleryError(f"the name {key!r} appears twice in the import")
            seen.add(key)
            created = timestamp(rec.created_at, f"created_at of {key!r}")
            try:
                rows = prepare_all(rec.templates)
            except GalleryError as e:
                raise type(e)(f"{key!r}: {e}") from e
            threshold = None if rec.threshold is None else finite_number(rec.threshold, f"threshold of {key!r}")
            if threshold is not None and not -1.0 <= threshold <= 1.0:
                raise GalleryError(f"the threshold of {key!r} must be between -1 and 1 (got {threshold:g})")
            prepared.append((key, created, rows, threshold))
            all_rows.extend(rows)
        prepare_all_consistent(all_rows)
        return prepared

    def _import_in(self, conn, prepared: list[tuple[str, float, list[TemplateRow], float | None]], checked: list,
                   on_conflict: OnConflict) -> ImportSummary:
        """:meth:`import_people` inside a write transaction."""
        added = merged = skipped = count = 0
        now = time.time()
        self._check_compatible(conn, [row for _, _, rows, _ in prepared for row in rows])
        keys = self._name_keys(conn)  # once: an import may bring a million people
        ids = {name: person_id for entries in keys.values() for person_id, name in entries}
        owned = []
        for key, created, rows, threshold in prepared:
            if key not in ids:
                pid = self._new_person(conn, key, created, threshold, keys)
                added += 1
            elif on_conflict == "error":
                raise GalleryError(f"a person named {key!r} is already in the gallery (choose to merge or skip)")
            elif on_conflict == "skip":
                skipped += 1
                continue
            else:
                pid = ids[key]
                merged += 1
                # Importing the same backup twice must not duplicate templates.
                have = {t.embedding.astype("<f4").tobytes() for t in self._templates(conn, pid)}
                rows = [r for r in rows if r.blob not in have]
            owned += [(pid, r) for r in rows]
            count += len(rows)
        self._insert_many(conn, owned, now)
        self._record_in(conn, checked, {}, purge=False, skip_stored=True)
        return ImportSummary(added, merged, skipped, count)
