"""People memory in the gallery file: sightings and unknown visitors (schema 4).

A *sighting* is one track (or one photo of a folder): who it was (a person, an unknown
visitor "Unknown #N", or an unknown not clustered yet), where (the source, and the file
for a folder of photos), when (first and last time, frame numbers, number of frames),
its best similarity, its best-quality aligned crop (none in embeddings-only mode) and a
few of its best embeddings (``(k, D)`` float32 unit rows). Thumbnails and embeddings are
encrypted like templates when the gallery is. Sightings of a person go when the person
goes; those of a visitor when the visitor is dismissed.

Every change is one transaction that bumps ``meta.memory_revision`` (not the gallery's
``revision``, which the matcher follows), except those that also change people or
templates (naming a visitor, correcting a sighting), which bump both.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from faceapp.errors import GalleryError
from faceapp.storage.backend import Connection
from faceapp.storage.records import check_unit_rows, finite_number, lookup_name, prepare_all, timestamp

logger = logging.getLogger(__name__)

MAX_SIGHTING_EMBEDDINGS = 8
DEFAULT_RETENTION_DAYS = 30
_COLUMNS = ("s.id, p.name, s.visitor_id, s.source, s.file, s.first_seen, s.last_seen, s.first_frame, s.last_frame, "
            "s.frames, s.best_similarity, s.quality, s.thumbnail, s.embeddings, s.dim, s.model_id")


@dataclass(frozen=True)
class NewSighting:
    """A sighting to store. ``person``: the name given (None: unknown). ``visitor``: an
    existing visitor's id, or a negative key naming a visitor created in the same batch
    (see :meth:`MemoryMixin.record`), or None. ``embeddings``: float32 ``(k, D)`` unit
    rows, best first (at most :data:`MAX_SIGHTING_EMBEDDINGS` are kept). ``thumbnail``:
    the best aligned crop as JPEG/PNG bytes, or None."""

    person: str | None
    visitor: int | None
    source: str
    first_seen: float
    last_seen: float
    frames: int
    best_similarity: float
    quality: float
    embeddings: np.ndarray
    model_id: str
    file: str | None = None
    first_frame: int | None = None
    last_frame: int | None = None
    thumbnail: bytes | None = None


@dataclass(frozen=True)
class Sighting:
    """A stored sighting (see :class:`NewSighting`); ``person`` is a name or None."""

    id: int
    person: str | None
    visitor: int | None
    source: str
    file: str | None
    first_seen: float
    last_seen: float
    first_frame: int | None
    last_frame: int | None
    frames: int
    best_similarity: float
    quality: float
    thumbnail: bytes | None
    embeddings: np.ndarray
    model_id: str

    @property
    def label(self) -> str:
        """The name, ``Unknown #N``, or ``Unknown``."""
        return self.person or (visitor_label(self.visitor) if self.visitor is not None else "Unknown")

    def to_json(self) -> dict:
        return {"id": self.id, "person": self.person, "visitor": self.visitor, "label": self.label, "source": self.source,
                "file": self.file, "first_seen": round(self.first_seen, 3), "last_seen": round(self.last_seen, 3),
                "first_frame": self.first_frame, "last_frame": self.last_frame, "frames": self.frames,
                "best_similarity": round(self.best_similarity, 4), "quality": round(self.quality, 4),
                "thumbnail": self.thumbnail is not None}


@dataclass(frozen=True)
class Visitor:
    """An unknown visitor: ``Unknown #id``, with their sightings' span."""

    id: int
    created_at: float
    sightings: int
    first_seen: float | None
    last_seen: float | None

    @property
    def label(self) -> str:
        return visitor_label(self.id)


@dataclass(frozen=True)
class RecordResult:
    """What :meth:`MemoryMixin.record` stored: the new sightings' ids (in order) and the
    id given to each new visitor key."""

    ids: tuple[int, ...]
    visitors: Mapping[int, int]


def visitor_label(visitor: int) -> str:
    return f"Unknown #{visitor}"


def _embedding_blob(rows: np.ndarray, where: str) -> tuple[bytes, int]:
    rows = np.asarray(rows, np.float32)
    if rows.ndim != 2 or not len(rows) or not rows.shape[1]:
        raise GalleryError(f"{where}: a sighting needs at least one embedding")
    rows = rows[:MAX_SIGHTING_EMBEDDINGS]
    check_unit_rows(rows, where, "a sighting")
    return rows.astype("<f4").tobytes(), int(rows.shape[1])


class MemoryMixin:
    """Sightings and visitors, for :class:`~faceapp.storage.gallery.Gallery` (uses its
    transactions, encryption and person lookup)."""

    # -- counters and settings -----------------------------------------------------
    def memory_revision(self) -> int:
        """A counter bumped by every change of sightings or visitors, from any process."""
        return self._counter("memory_revision")

    @property
    def retention_days(self) -> float:
        """Sightings older than this many days are purged (0: kept for ever)."""
        value = self._peek_meta("retention_days")
        try:
            return float(value) if value is not None else DEFAULT_RETENTION_DAYS
        except (TypeError, ValueError):
            return DEFAULT_RETENTION_DAYS

    def set_retention_days(self, days: float) -> None:
        value = finite_number(days, "the retention in days")
        if value < 0:
            raise GalleryError(f"the retention must be 0 (keep for ever) or a number of days, not {value:g}")
        with self._write(counter="memory_revision") as conn:
            self._meta_set(conn, "retention_days", value)

    # -- writing -------------------------------------------------------------------
    def record(self, sightings: Sequence[NewSighting], adopt: Mapping[int, Sequence[int]] | None = None,
               *, purge: bool = True) -> RecordResult:
        """Store a batch of sightings in one transaction. A negative ``visitor`` key
        creates one new visitor per key; ``adopt[key]`` lists stored sightings (unknowns
        not clustered yet) that join that new (negative key) or existing visitor. With
        ``purge``, sightings older than the retention are deleted in the same transaction.
        A sighting naming a person who is no longer enrolled is stored as an unknown."""
        checked = self._check_sightings(sightings)
        with self._write(counter="memory_revision") as conn:
            return self._record_in(conn, checked, adopt or {}, purge=purge)

    def _check_sightings(self, sightings: Sequence[NewSighting]) -> list[tuple]:
        checked = []
        for number, s in enumerate(sightings):
            if not isinstance(s, NewSighting):
                raise GalleryError(f"expected a NewSighting, got {type(s).__name__}")
            where = f"sighting {number + 1} of the batch"
            blob, dim = _embedding_blob(s.embeddings, where)
            first, last = timestamp(s.first_seen, f"{where}: first seen"), timestamp(s.last_seen, f"{where}: last seen")
            if last < first or int(s.frames) < 1:
                raise GalleryError(f"{where}: last seen before first seen, or no frame")
            checked.append((s, blob, dim, first, last))
        return checked

    def _record_in(self, conn: Connection, checked: list[tuple], adopt: Mapping[int, Sequence[int]], *,
                   purge: bool, skip_stored: bool = False) -> RecordResult:
        """:meth:`record` inside a transaction (``skip_stored``: leave out sightings already
        there, same source, times, frames and scores: an archive imported twice)."""
        only = self.embeddings_only
        now = time.time()
        made: dict[int, int] = {}

        def visitor_of(key: int) -> int:
            if key not in made:
                made[key] = int(conn.execute("INSERT INTO visitors(created_at, active_at) VALUES (?, ?)", (now, now)).lastrowid)
            return made[key]

        ids = []
        for s, blob, dim, first, last in checked:
            stored = skip_stored and conn.execute(
                "SELECT visitor_id FROM sightings WHERE source = ? AND first_seen = ? AND last_seen = ? AND frames = ? "
                "AND best_similarity = ? AND quality = ?",
                (str(s.source), first, last, int(s.frames), float(s.best_similarity), float(s.quality))).fetchone()
            if stored:  # imported before: the archive's visitor is that sighting's visitor
                if s.visitor is not None and s.visitor < 0 and stored[0] is not None:
                    made.setdefault(s.visitor, int(stored[0]))
                continue
            person_id = None
            if s.person is not None:
                row = conn.execute("SELECT id FROM people WHERE name = ?", (s.person,)).fetchone()
                person_id = None if row is None else int(row[0])
            visitor = None if person_id is not None or s.visitor is None else (
                visitor_of(s.visitor) if s.visitor < 0 else s.visitor)
            if visitor is not None and conn.execute("SELECT 1 FROM visitors WHERE id = ?", (visitor,)).fetchone() is None:
                visitor = None  # dismissed or merged meanwhile: an unknown again
            if visitor is not None:
                conn.execute("UPDATE visitors SET active_at = MAX(active_at, ?) WHERE id = ?", (last, visitor))
            cursor = conn.execute(
                "INSERT INTO sightings(person_id, visitor_id, source, file, first_seen, last_seen, first_frame, last_frame, "
                "frames, best_similarity, quality, thumbnail, embeddings, dim, model_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, x'', ?, ?)",
                (person_id, visitor, str(s.source), s.file, first, last, s.first_frame, s.last_frame, int(s.frames),
                 float(s.best_similarity), float(s.quality), dim, str(s.model_id)),
            )
            sid = int(cursor.lastrowid)
            thumbnail = None if only else s.thumbnail
            conn.execute("UPDATE sightings SET thumbnail = ?, embeddings = ? WHERE id = ?",
                         (self._seal(thumbnail, sid, "thumbnail", "sighting"), self._seal(blob, sid, "embeddings", "sighting"), sid))
            ids.append(sid)
        for key, members in adopt.items():
            conn.executemany("UPDATE sightings SET visitor_id = ? WHERE id = ? AND person_id IS NULL",
                             [(visitor_of(key) if key < 0 else key, int(m)) for m in members])
        if purge:
            self._purge(conn)
        self._bump(conn, "memory_revision")
        return RecordResult(tuple(ids), made)

    def create_visitors(self, count: int) -> list[int]:
        """``count`` new unknown visitors (their sightings follow); their ids."""
        now = time.time()
        with self._write(counter="memory_revision") as conn:
            return [int(conn.execute("INSERT INTO visitors(created_at, active_at) VALUES (?, ?)", (now, now)).lastrowid)
                    for _ in range(int(count))]

    def replace_sighting_embeddings(self, embeddings: Mapping[int, np.ndarray], model_id: str) -> None:
        """Give sightings embeddings from another model (``{sighting id: float32 (D,)}``), in one transaction."""
        rows = {int(sid): _embedding_blob(np.asarray(e, np.float32)[None], f"sighting {sid}") for sid, e in embeddings.items()}
        with self._write(counter="memory_revision") as conn:
            conn.executemany("UPDATE sightings SET embeddings = ?, dim = ?, model_id = ? WHERE id = ?",
                             [(self._seal(blob, sid, "embeddings", "sighting"), dim, str(model_id), sid)
                              for sid, (blob, dim) in rows.items()])

    def touch_visitors(self, visitors: Sequence[int], when: float | None = None) -> None:
        """Faces of these visitors are in view now: the retention keeps them even when
        all their stored sightings are old."""
        when = time.time() if when is None else float(when)
        with self._write(counter="memory_revision") as conn:
            conn.executemany("UPDATE visitors SET active_at = MAX(active_at, ?) WHERE id = ?", [(when, int(v)) for v in visitors])

    def prune_visitors(self, visitors: Sequence[int]) -> None:
        """Forget those of ``visitors`` left without sightings (a track that turned out
        to be an enrolled person)."""
        with self._write(counter="memory_revision") as conn:
            conn.executemany("DELETE FROM visitors WHERE id = ? AND id NOT IN "
                             "(SELECT visitor_id FROM sightings WHERE visitor_id IS NOT NULL)", [(int(v),) for v in visitors])

    def set_visitors(self, assignments: Mapping[int, int | None]) -> None:
        """Give unknown sightings their visitors (None: not clustered), in one
        transaction; visitors left without sightings are forgotten (re-clustering)."""
        with self._write(counter="memory_revision") as conn:
            old = {int(r[0]) for r in conn.execute("SELECT DISTINCT visitor_id FROM sightings WHERE visitor_id IS NOT NULL")}
            conn.executemany("UPDATE sightings SET visitor_id = ? WHERE id = ? AND person_id IS NULL",
                             [(visitor, int(sid)) for sid, visitor in assignments.items()])
            conn.executemany("DELETE FROM visitors WHERE id = ? AND id NOT IN "  # only those this left empty
                             "(SELECT visitor_id FROM sightings WHERE visitor_id IS NOT NULL)", [(v,) for v in old])

    def _purge(self, conn: Connection, before: float | None = None) -> int:
        if before is None:
            value = self._meta_get(conn, "retention_days")
            days = float(value) if isinstance(value, (int, float)) else DEFAULT_RETENTION_DAYS
            if days <= 0:
                return 0
            before = time.time() - days * 86400
        deleted = conn.execute("DELETE FROM sightings WHERE last_seen < ?", (float(before),)).rowcount
        # Visitors left without sightings and not seen since (not one whose face is in view).
        conn.execute("DELETE FROM visitors WHERE active_at < ? AND id NOT IN "
                     "(SELECT visitor_id FROM sightings WHERE visitor_id IS NOT NULL)", (float(before),))
        return deleted

    def purge_sightings(self, before: float | None = None) -> int:
        """Delete the sightings last seen before ``before`` (unix time; default: the
        retention), and visitors left without any; wipes them from the file."""
        if before is not None:
            before = timestamp(before, "the purge date")
        with self._write(counter="memory_revision") as conn:
            deleted = self._purge(conn, before)
        if deleted:
            self.wipe_free_space()
        logger.info("gallery %s: %d sighting(s) purged", self._path, deleted)
        return deleted

    # -- reading -------------------------------------------------------------------
    def _sighting(self, r: tuple) -> Sighting:
        sid = int(r[0])
        blob = self._open_blob(r[13], sid, "embeddings", "sighting") or b""
        dim = int(r[14])
        if dim < 1 or len(blob) % (4 * dim):
            raise GalleryError(f"gallery {self._path} is corrupt: sighting {sid} has malformed embeddings")
        embeddings = np.frombuffer(blob, "<f4").reshape(-1, dim).astype(np.float32)
        return Sighting(sid, r[1], r[2], r[3], r[4], float(r[5]), float(r[6]), r[7], r[8], int(r[9]), float(r[10]),
                        float(r[11]), self._open_blob(r[12], sid, "thumbnail", "sighting"), embeddings, r[15])

    def sightings(self, *, since: float | None = None, until: float | None = None, person: str | None = None,
                  unknown: bool = False, visitor: int | None = None, limit: int | None = None) -> list[Sighting]:
        """Sightings overlapping [since, until] (unix times), newest first; only
        ``person``'s, only unknowns (``unknown``), or only ``visitor``'s."""
        sql = f"SELECT {_COLUMNS} FROM sightings s LEFT JOIN people p ON p.id = s.person_id WHERE TRUE"
        args: list = []
        if since is not None:
            sql += " AND s.last_seen >= ?"
            args.append(float(since))
        if until is not None:
            sql += " AND s.first_seen <= ?"
            args.append(float(until))
        with self._read() as conn:
            if person is not None:
                sql += " AND s.person_id = ?"
                args.append(self._person_id(conn, lookup_name(person)))
            if unknown:
                sql += " AND s.person_id IS NULL"
            if visitor is not None:
                sql += " AND s.visitor_id = ?"
                args.append(int(visitor))
            sql += " ORDER BY s.last_seen DESC, s.id DESC"
            if limit is not None:
                sql += f" LIMIT {int(limit)}"
            rows = conn.execute(sql, args).fetchall()
        return [self._sighting(r) for r in rows]

    def sighting(self, sighting_id: int) -> Sighting:
        with self._read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM sightings s LEFT JOIN people p ON p.id = s.person_id WHERE s.id = ?",
                               (int(sighting_id),)).fetchone()
        if row is None:
            raise GalleryError(f"no sighting {sighting_id} in the gallery")
        return self._sighting(row)

    def visitors(self) -> list[Visitor]:
        """Every unknown visitor, the most recently seen first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT v.id, v.created_at, COUNT(s.id), MIN(s.first_seen), MAX(s.last_seen) FROM visitors v "
                "LEFT JOIN sightings s ON s.visitor_id = v.id GROUP BY v.id ORDER BY MAX(s.last_seen) DESC NULLS LAST, v.id DESC"
            ).fetchall()
        return [Visitor(int(r[0]), float(r[1]), int(r[2]), r[3], r[4]) for r in rows]

    def visitor(self, visitor_id: int) -> Visitor:
        found = [v for v in self.visitors() if v.id == int(visitor_id)]
        if not found:
            raise GalleryError(f"no unknown visitor #{visitor_id} in the gallery")
        return found[0]

    def last_seen(self) -> dict[str, float]:
        """Each person's last sighting (unix time), for those ever seen."""
        with self._read() as conn:
            rows = conn.execute("SELECT p.name, MAX(s.last_seen) FROM sightings s JOIN people p ON p.id = s.person_id "
                                "GROUP BY p.id").fetchall()
        return {r[0]: float(r[1]) for r in rows}

    def unknown_faces(self, model_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every unknown sighting's embeddings, for clustering: float32 ``(N, D)`` rows,
        the visitor of each (int64, -1: not clustered yet) and its sighting id."""
        with self._read() as conn:
            rows = conn.execute("SELECT id, visitor_id, embeddings, dim FROM sightings WHERE person_id IS NULL AND model_id = ? "
                                "ORDER BY id", (model_id,)).fetchall()
        blocks, visitors, ids = [], [], []
        for sid, visitor, blob, dim in rows:
            data = self._open_blob(blob, sid, "embeddings", "sighting") or b""
            block = np.frombuffer(data, "<f4").reshape(-1, int(dim)).astype(np.float32)
            blocks.append(block)
            visitors += [-1 if visitor is None else int(visitor)] * len(block)
            ids += [int(sid)] * len(block)
        dim = int(rows[0][3]) if rows else 0
        return (np.concatenate(blocks) if blocks else np.zeros((0, dim), np.float32),
                np.array(visitors, np.int64), np.array(ids, np.int64))

    # -- visitors and corrections -----------------------------------------------------
    def merge_visitors(self, source: int, target: int) -> Visitor:
        """Move visitor ``source``'s sightings to ``target`` and forget ``source``."""
        source, target = int(source), int(target)
        if source == target:
            raise GalleryError(f"cannot merge Unknown #{source} into itself")
        with self._write(counter="memory_revision") as conn:
            for v in (source, target):
                if conn.execute("SELECT 1 FROM visitors WHERE id = ?", (v,)).fetchone() is None:
                    raise GalleryError(f"no unknown visitor #{v} in the gallery")
            conn.execute("UPDATE sightings SET visitor_id = ? WHERE visitor_id = ?", (target, source))
            conn.execute("DELETE FROM visitors WHERE id = ?", (source,))
        return self.visitor(target)

    def dismiss_visitor(self, visitor_id: int) -> int:
        """Forget visitor ``visitor_id`` with their sightings and crops; returns how many sightings went."""
        with self._write(counter="memory_revision") as conn:
            if conn.execute("SELECT 1 FROM visitors WHERE id = ?", (int(visitor_id),)).fetchone() is None:
                raise GalleryError(f"no unknown visitor #{visitor_id} in the gallery")
            gone = conn.execute("DELETE FROM sightings WHERE visitor_id = ?", (int(visitor_id),)).rowcount
            conn.execute("DELETE FROM visitors WHERE id = ?", (int(visitor_id),))
        self.wipe_free_space()
        return gone

    def assign(self, sighting_ids: Sequence[int], name: str, templates: Sequence, *, negative: tuple[str, object] | None = None,
               new_person: bool = False, forget_visitor: int | None = None) -> None:
        """Give sightings to person ``name`` in one transaction, adding ``templates``
        (NewTemplate, maybe none) to them (creating them first if ``new_person``).
        ``negative``: (the person they were wrongly given, a NewTemplate): stored as a
        "not them" template of that person. ``forget_visitor``: the visitor they came
        from, forgotten when left without sightings."""
        from faceapp.storage.records import normalize_name

        key = normalize_name(name) if new_person else lookup_name(name)
        rows = prepare_all(templates)
        wrong_rows = [dataclasses.replace(r, kind="negative") for r in prepare_all([negative[1]])] if negative else []
        now = time.time()
        with self._write() as conn:  # templates change: the matcher follows the revision
            for sid in sighting_ids:
                if conn.execute("SELECT 1 FROM sightings WHERE id = ?", (int(sid),)).fetchone() is None:
                    raise GalleryError(f"no sighting {sid} in the gallery")
            if new_person:
                self._refuse_lookalike(conn, key)
                person_id = self._new_person(conn, key, now)
            else:
                person_id = self._person_id(conn, key)
            if rows:
                self._check_compatible(conn, rows)
                self._insert(conn, person_id, rows, now)
            if wrong_rows:
                self._insert(conn, self._person_id(conn, lookup_name(negative[0])), wrong_rows, now)
            came_from = {int(r[0]) for i in sighting_ids
                         for r in conn.execute("SELECT visitor_id FROM sightings WHERE id = ? AND visitor_id IS NOT NULL", (int(i),))}
            conn.executemany("UPDATE sightings SET person_id = ?, visitor_id = NULL WHERE id = ?",
                             [(person_id, int(i)) for i in sighting_ids])
            came_from |= {int(forget_visitor)} if forget_visitor is not None else set()
            conn.executemany("DELETE FROM visitors WHERE id = ? AND id NOT IN "  # visitors this left without sightings
                             "(SELECT visitor_id FROM sightings WHERE visitor_id IS NOT NULL)", [(v,) for v in came_from])
            self._bump(conn, "memory_revision")

    def unassign(self, sighting_id: int) -> str:
        """"Not NAME" on a sighting: its person gets the sighting's best face (embedding and
        crop) as a "not them" template, and the sighting becomes an unknown (not clustered),
        in one transaction; returns the person's name. A sighting recorded with another
        model than the gallery's templates (one ``gallery reembed`` could not move) gives no
        "not them" template (its embedding would not compare); it still becomes an unknown."""
        from faceapp.storage.records import NewTemplate

        with self._write() as conn:
            found = conn.execute(f"SELECT {_COLUMNS} FROM sightings s LEFT JOIN people p ON p.id = s.person_id WHERE s.id = ?",
                                 (int(sighting_id),)).fetchone()
            if found is None:
                raise GalleryError(f"no sighting {sighting_id} in the gallery")
            sighting = self._sighting(found)
            if sighting.person is None:
                raise GalleryError(f"sighting {sighting_id} is not anyone's ({sighting.label}): nothing to correct")
            rows = [dataclasses.replace(r, kind="negative") for r in prepare_all([NewTemplate(
                sighting.embeddings[0], sighting.model_id, quality=sighting.quality, thumbnail=sighting.thumbnail,
                source=f"sighting {sighting_id}")])]
            stored = conn.execute("SELECT model_id FROM templates LIMIT 1").fetchone()
            if stored is None or stored[0] == sighting.model_id:
                self._check_compatible(conn, rows)
                self._insert(conn, self._person_id(conn, sighting.person), rows, time.time())
            else:
                logger.warning("sighting %d was recorded with model %r, the gallery's templates are %r's: no 'not them' "
                               "template is stored", sighting_id, sighting.model_id, stored[0])
            conn.execute("UPDATE sightings SET person_id = NULL, visitor_id = NULL WHERE id = ?", (int(sighting_id),))
            self._bump(conn, "memory_revision")
        return sighting.person
