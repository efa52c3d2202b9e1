"""The face gallery: people and their face templates (the repository), in one SQLite
file by default or on a PostgreSQL server shared by several desktops.

``Gallery(location, ...)`` opens either: a path gives a :class:`SqliteGallery`, a
``postgresql://`` URL a :class:`PostgresGallery` (:mod:`faceapp.storage.postgres`); the rest of
the app sees one interface. The values and their validation are in
:mod:`faceapp.storage.records`; what the engines share (encryption, meta values) in
:mod:`faceapp.storage.backend`; the SQLite file's connection, schema and migrations in
:mod:`faceapp.storage.database` and :mod:`faceapp.storage.schema`, the server's in
:mod:`faceapp.storage.postgres`. All templates in one gallery share one ``model_id``
and one embedding dimension.

Privacy: ``meta.embeddings_only`` = 1 drops thumbnails on every insert; encryption
(:meth:`Gallery.encrypt`, :meth:`Gallery.decrypt`, :meth:`Gallery.change_passphrase`)
rewrites every blob in one transaction. Names, model ids, qualities, sources and times
stay plaintext.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Sequence

import numpy as np

from faceapp.embedding.modelcard import model_advice
from faceapp.errors import GalleryError, ModelMismatchError, UnknownPersonError
from faceapp.storage.backend import BaseDatabase, Connection
from faceapp.storage.bulk import BulkMixin
from faceapp.storage.crypto import PassphraseError
from faceapp.storage.database import DEFAULT_BUSY_TIMEOUT_MS, GalleryDatabase
from faceapp.storage.locations import check_location, is_server_url
from faceapp.storage.memory import MemoryMixin
from faceapp.storage.records import (
    MAX_NAME_LENGTH,
    MAX_THUMBNAIL_BYTES,
    GalleryMatrix,
    ImportSummary,
    NewTemplate,
    OnConflict,
    Person,
    PersonRecord,
    Template,
    TemplateRow,
    check_unit_rows,
    decode_person,
    decode_template,
    decode_threshold,
    finite_number,
    lookup_name,
    name_key,
    normalize_name,
    prepare_all,
    sort_key,
)
from faceapp.storage.schema import SCHEMA_VERSION

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS", "MAX_NAME_LENGTH", "MAX_THUMBNAIL_BYTES", "SCHEMA_VERSION", "Gallery", "GalleryMatrix",
    "ImportSummary", "NewTemplate", "OnConflict", "PassphraseError", "Person", "PersonRecord", "Template", "normalize_name",
]

logger = logging.getLogger(__name__)


_PEOPLE_SQL = (
    "SELECT p.id, p.name, p.created_at, "
    "COUNT(CASE WHEN t.kind = 'positive' THEN 1 END), COUNT(CASE WHEN t.kind = 'negative' THEN 1 END), p.threshold "
    "FROM people p LEFT JOIN templates t ON t.person_id = p.id"
)


class Gallery(MemoryMixin, BulkMixin, BaseDatabase):
    """A gallery: open it with ``Gallery(location, passphrase=...)`` (a file path, see
    :class:`~faceapp.storage.database.GalleryDatabase`, or a ``postgresql://`` URL, see
    :class:`~faceapp.storage.postgres.PostgresDatabase`), then read and change it."""

    def __new__(cls, location=None, *args, **kwargs):
        location = kwargs.get("path", location)
        try:
            check_location(location)
        except ValueError as error:
            raise GalleryError(str(error)) from None
        engine = cls
        if cls is Gallery:
            if location is not None and is_server_url(location):
                engine = _server_engine()
            else:
                engine = SqliteGallery
        return super().__new__(engine)

    @staticmethod
    def is_encrypted_file(location) -> bool:
        """True if the gallery at ``location`` exists and is encrypted (so the app must ask
        for its passphrase before opening it)."""
        if is_server_url(location):
            from faceapp.storage.postgres import PostgresDatabase

            return PostgresDatabase.is_encrypted_file(location)
        return GalleryDatabase.is_encrypted_file(location)

    @property
    def path(self):
        """Where the gallery is: its file (a Path), or its server URL without the password."""
        return self._path

    # ----- encryption and privacy

    def set_embeddings_only(self, enabled: bool) -> int:
        """Turn embeddings-only mode on or off. Turning it on deletes every stored thumbnail
        (in the same transaction) and wipes them from the file; returns how many were deleted."""
        with self._write() as conn:
            deleted = 0
            if enabled:
                deleted = conn.execute("UPDATE templates SET thumbnail = NULL WHERE thumbnail IS NOT NULL").rowcount
                deleted += conn.execute("UPDATE sightings SET thumbnail = NULL WHERE thumbnail IS NOT NULL").rowcount
            self._meta_set(conn, "embeddings_only", 1 if enabled else 0)
        if deleted:
            self.wipe_free_space()
        logger.info("gallery %s: embeddings-only %s (%d thumbnail(s) deleted)", self._path, enabled, deleted)
        return deleted


    # ----- helpers inside a transaction

    def _person_id(self, conn: Connection, name: str) -> int:
        row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownPersonError(f"no person named {name!r} in the gallery")
        return int(row[0])

    def _person(self, conn: Connection, name: str) -> Person:
        row = conn.execute(_PEOPLE_SQL + " WHERE p.name = ? GROUP BY p.id", (name,)).fetchone()
        if row is None:
            raise UnknownPersonError(f"no person named {name!r} in the gallery")
        return decode_person(row, f"gallery {self._path}")

    def _check_compatible(self, conn: Connection, rows: Sequence[TemplateRow]) -> None:
        """Refuse rows whose model_id or dim differs from the templates already stored."""
        if not rows:
            return
        existing = conn.execute("SELECT model_id, dim FROM templates LIMIT 1").fetchone()
        if existing is None:
            return
        model_id, dim = existing
        new = rows[0]
        if new.model_id != model_id:
            raise ModelMismatchError(
                f"the templates were made by model {new.model_id!r} but the gallery holds templates from "
                f"model {model_id!r}; {model_advice(model_id, new.model_id)}"
            )
        if new.dim != dim:
            raise GalleryError(f"embedding dimension {new.dim} does not match the gallery's dimension {dim}")

    def _insert(self, conn: Connection, person_id: int, rows: Sequence[TemplateRow], now: float) -> None:
        self._insert_many(conn, [(person_id, row) for row in rows], now)

    def _insert_many(self, conn: Connection, owned: Sequence[tuple[int, TemplateRow]], now: float) -> None:
        """Insert ``(person id, row)`` pairs in one statement, ids in that order."""
        if not owned:
            return
        # Ids are chosen here (we hold the write lock) so encrypted blobs can be bound to them,
        # and never reused (meta.last_template_id): a search index keyed by id never mistakes
        # a new face for a removed one.
        stored = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM templates").fetchone()[0])
        last = self._meta_get(conn, "last_template_id")
        first = max(stored, last if isinstance(last, int) else 0) + 1
        keep_thumbnails = not self._meta_get(conn, "embeddings_only")
        written = [(tid, r.blob) for tid, (_, r) in enumerate(owned, first)]
        conn.executemany(
            "INSERT INTO templates(id, person_id, embedding, dim, model_id, quality, thumbnail, source, created_at, kind) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    tid,
                    person_id,
                    self._seal(r.blob, tid, "embedding"),
                    r.dim,
                    r.model_id,
                    r.quality,
                    self._seal(r.thumbnail if keep_thumbnails else None, tid, "thumbnail"),
                    r.source,
                    now if r.created_at is None else r.created_at,
                    r.kind,
                )
                for tid, (person_id, r) in enumerate(owned, first)
            ],
        )
        self._meta_set(conn, "last_template_id", first + len(owned) - 1)
        self._templates_written(conn, written)

    @staticmethod
    def _name_keys(conn: Connection) -> dict[str, list[tuple[int, str]]]:
        """Every enrolled ``(id, name)`` by its :func:`name_key` (for many look-ups at once)."""
        keys: dict[str, list[tuple[int, str]]] = {}
        for person_id, other in conn.execute("SELECT id, name FROM people"):
            if isinstance(other, str):
                keys.setdefault(name_key(other), []).append((int(person_id), other))
        return keys

    def _lookalike(self, conn: Connection, name: str, except_id: int | None = None,
                   keys: dict[str, list[tuple[int, str]]] | None = None) -> str | None:
        """The enrolled name that differs from ``name`` only by case or invisible characters."""
        found = (keys if keys is not None else self._name_keys(conn)).get(name_key(name), ())
        return next((other for person_id, other in found if person_id != except_id and other != name), None)

    def _refuse_lookalike(self, conn: Connection, name: str, except_id: int | None = None,
                          keys: dict[str, list[tuple[int, str]]] | None = None) -> None:
        other = self._lookalike(conn, name, except_id, keys)
        if other is not None:
            raise GalleryError(
                f"{name!r} differs from the enrolled {other!r} only by case or invisible characters: "
                f"use {other!r} (enroll --add), or rename or merge them (faceapp gallery rename / merge)"
            )

    def _new_person(self, conn: Connection, name: str, created_at: float, threshold: float | None = None,
                    keys: dict[str, list[tuple[int, str]]] | None = None) -> int:
        """Add a person (``keys``: :meth:`_name_keys`, kept up to date, for many at once)."""
        taken = (any(other == name for _, other in keys.get(name_key(name), ())) if keys is not None else
                 conn.execute("SELECT 1 FROM people WHERE name = ?", (name,)).fetchone() is not None)
        if taken:
            raise GalleryError(f"a person named {name!r} is already in the gallery")
        self._refuse_lookalike(conn, name, keys=keys)
        cur = conn.execute("INSERT INTO people(name, created_at, threshold) VALUES (?, ?, ?)", (name, created_at, threshold))
        if cur.lastrowid is None:
            raise GalleryError(f"gallery {self._path}: could not add {name!r}")
        if keys is not None:
            keys.setdefault(name_key(name), []).append((int(cur.lastrowid), name))
        return int(cur.lastrowid)

    # ----- reading

    def people(self) -> list[Person]:
        """All people, sorted by name (case-insensitively, then exactly)."""
        with self._read() as conn:
            return self._people(conn)

    def _people(self, conn: Connection) -> list[Person]:
        rows = conn.execute(_PEOPLE_SQL + " GROUP BY p.id").fetchall()
        people = [decode_person(r, f"gallery {self._path}") for r in rows]
        people.sort(key=lambda p: sort_key(p.name))
        return people

    def person(self, name: str) -> Person:
        """The person called ``name``; UnknownPersonError if absent."""
        key = lookup_name(name)
        with self._read() as conn:
            return self._person(conn, key)

    def templates(self, name: str | None = None) -> list[Template]:
        """All templates (of ``name`` only, if given), in insertion (id) order."""
        with self._read() as conn:
            pid = None if name is None else self._person_id(conn, lookup_name(name))
            return self._templates(conn, pid)

    def _templates(self, conn: Connection, person_id: int | None) -> list[Template]:
        sql = "SELECT id, person_id, embedding, model_id, quality, thumbnail, source, created_at, dim, kind FROM templates"
        if person_id is None:
            rows = conn.execute(sql + " ORDER BY id").fetchall()
        else:
            rows = conn.execute(sql + " WHERE person_id = ? ORDER BY id", (person_id,)).fetchall()
        return [self._template(r) for r in rows]

    def _template(self, r: tuple) -> Template:
        tid = int(r[0])
        blob = self._open_blob(r[2], tid, "embedding")
        thumb = self._open_blob(r[5], tid, "thumbnail")
        return decode_template(r, blob, thumb, int(r[8]) if isinstance(r[8], int) else -1, f"gallery {self._path}")

    def snapshot(self) -> tuple[list[Person], list[Template]]:
        """People (sorted as :meth:`people`) and all templates, read in one consistent snapshot."""
        with self._read() as conn:
            return self._people(conn), self._templates(conn, None)

    def model_id(self) -> str | None:
        """The model_id of the stored templates, or None when there are none."""
        with self._read() as conn:
            row = conn.execute("SELECT model_id FROM templates LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def matrix(self, model_id: str) -> GalleryMatrix:
        """All templates as one matrix for matching with embeddings from ``model_id``:
        the positive ones as ``embeddings``, the negative ones ("not this person") as
        ``negatives``, and each person's own threshold (NaN: automatic).

        Raises ModelMismatchError if any stored template comes from another model.
        """
        with self._read() as conn:
            other = conn.execute(
                "SELECT model_id FROM templates WHERE model_id != ? LIMIT 1", (model_id,)
            ).fetchone()
            if other is not None:
                raise ModelMismatchError(
                    f"the gallery holds templates from model {other[0]!r} but model {model_id!r} is in use; "
                    f"{model_advice(other[0], model_id)}"
                )
            rows = conn.execute(
                "SELECT p.name, t.embedding, t.dim, t.id, t.kind, p.threshold FROM templates t JOIN people p ON p.id = t.person_id "
                "ORDER BY p.id, t.id"
            ).fetchall()
        if self._key is not None:
            rows = [(r[0], self._open_blob(r[1], r[3], "embedding"), *r[2:]) for r in rows]
        negative_rows = [r for r in rows if r[4] == "negative"]
        rows = [r for r in rows if r[4] != "negative"]
        if not rows:
            return GalleryMatrix(np.zeros((0, 0), np.float32), np.zeros((0,), np.int64), (), None)
        dims = {r[2] for r in rows}
        if len(dims) != 1 or not all(isinstance(r[2], int) and isinstance(r[1], bytes) and len(r[1]) == 4 * r[2] > 0 for r in rows):
            raise GalleryError(f"gallery {self._path} is corrupt (inconsistent embedding sizes)")
        names = tuple(sorted({r[0] for r in rows}, key=sort_key))
        order = {n: i for i, n in enumerate(names)}
        rows.sort(key=lambda r: order[r[0]])  # stable: keeps template id order within a person
        dim = dims.pop()
        emb = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
        emb = emb.astype(np.float32)  # native-endian, writable copy
        check_unit_rows(emb, f"gallery {self._path}")
        idx = np.fromiter((order[r[0]] for r in rows), dtype=np.int64, count=len(rows))
        thresholds = np.full(len(names), np.nan)
        for r in rows:
            if r[5] is not None:
                thresholds[order[r[0]]] = decode_threshold(r[5], f"gallery {self._path}")
        negative_rows = [r for r in negative_rows if r[0] in order and isinstance(r[1], bytes) and len(r[1]) == 4 * dim]
        negatives = np.frombuffer(b"".join(r[1] for r in negative_rows), dtype="<f4").reshape(len(negative_rows), dim).astype(np.float32)
        check_unit_rows(negatives, f"gallery {self._path}", "a negative template")
        negative_index = np.fromiter((order[r[0]] for r in negative_rows), dtype=np.int64, count=len(negative_rows))
        template_ids = np.fromiter((r[3] for r in rows), dtype=np.int64, count=len(rows))
        return GalleryMatrix(emb, idx, names, model_id, negatives, negative_index, thresholds, template_ids)

    # ----- writing

    def add_person(self, name: str, templates: Sequence[NewTemplate]) -> Person:
        """Create a new person with >= 1 templates. GalleryError if the name is taken."""
        key = normalize_name(name)
        rows = prepare_all(templates)
        if not rows:
            raise GalleryError(f"cannot add {key!r} without any face templates")
        now = time.time()
        with self._write() as conn:
            self._check_compatible(conn, rows)
            pid = self._new_person(conn, key, now)
            self._insert(conn, pid, rows, now)
            person = self._person(conn, key)
        logger.info("gallery: added %r with %d template(s)", key, len(rows))
        return person

    def add_templates(self, name: str, templates: Sequence[NewTemplate]) -> Person:
        """Add templates to an existing person; returns the updated person."""
        rows = prepare_all(templates)
        if not rows:
            raise GalleryError("no templates to add")
        return self._add_rows(name, rows, "gallery: added %d template(s) to %r")

    def _add_rows(self, name: str, rows: Sequence[TemplateRow], message: str) -> Person:
        key = lookup_name(name)
        with self._write() as conn:
            pid = self._person_id(conn, key)
            self._check_compatible(conn, rows)
            self._insert(conn, pid, rows, time.time())
            person = self._person(conn, key)
        logger.info(message, len(rows), key)
        return person

    def add_negatives(self, name: str, templates: Sequence[NewTemplate]) -> Person:
        """Store faces that are *not* ``name`` (a look-alike the app named wrongly): a
        face nearer to these than to the person's own templates is not given their name."""
        rows = [dataclasses.replace(row, kind="negative") for row in prepare_all(templates)]
        if not rows:
            raise GalleryError("no faces to add")
        return self._add_rows(name, rows, "gallery: %d face(s) marked as not %r")

    def set_threshold(self, name: str, threshold: float | None) -> Person:
        """Give ``name`` their own decision threshold (a cosine similarity in [-1, 1]), or
        None to go back to the automatic one."""
        key = lookup_name(name)
        value = None if threshold is None else finite_number(threshold, "a threshold")
        if value is not None and not -1.0 <= value <= 1.0:
            raise GalleryError(f"a threshold must be between -1 and 1 (got {value:g})")
        with self._write() as conn:
            pid = self._person_id(conn, key)
            conn.execute("UPDATE people SET threshold = ? WHERE id = ?", (value, pid))
            person = self._person(conn, key)
        logger.info("gallery: threshold of %r set to %s", key, "automatic" if value is None else value)
        return person

    def rename(self, old: str, new: str) -> Person:
        """Rename a person; GalleryError if ``new`` is taken by someone else."""
        old_key = lookup_name(old)
        new_key = normalize_name(new)
        with self._write() as conn:
            pid = self._person_id(conn, old_key)
            if new_key != old_key:
                if conn.execute("SELECT 1 FROM people WHERE name = ?", (new_key,)).fetchone():
                    raise GalleryError(f"a person named {new_key!r} is already in the gallery")
                self._refuse_lookalike(conn, new_key, except_id=pid)
                conn.execute("UPDATE people SET name = ? WHERE id = ?", (new_key, pid))
            person = self._person(conn, new_key)
        logger.info("gallery: renamed %r to %r", old_key, new_key)
        return person

    def merge(self, source: str, target: str) -> Person:
        """Move all templates of ``source`` to ``target`` and delete ``source``; returns ``target``."""
        src_key, dst_key = lookup_name(source), lookup_name(target)
        with self._write() as conn:
            src = self._person_id(conn, src_key)
            dst = self._person_id(conn, dst_key)
            if src == dst:
                raise GalleryError(f"cannot merge {src_key!r} into itself")
            conn.execute("UPDATE templates SET person_id = ? WHERE person_id = ?", (dst, src))
            conn.execute("UPDATE sightings SET person_id = ? WHERE person_id = ?", (dst, src))
            conn.execute("DELETE FROM people WHERE id = ?", (src,))
            person = self._person(conn, dst_key)
        logger.info("gallery: merged %r into %r", src_key, dst_key)
        return person

    def remove(self, name: str) -> None:
        """Delete a person with all their templates (negatives too) and sightings."""
        key = lookup_name(name)
        with self._write() as conn:
            pid = self._person_id(conn, key)
            conn.execute("DELETE FROM people WHERE id = ?", (pid,))
        self._forget_search_index()
        self.wipe_free_space()
        logger.info("gallery: removed %r", key)

    def remove_template(self, template_id: int) -> None:
        """Delete one template; the person stays even if it was their last one."""
        self.remove_templates([template_id])

    def remove_templates(self, template_ids: Sequence[int]) -> int:
        """Delete these templates in ONE transaction, then wipe the freed space once.
        GalleryError, with nothing deleted, if any id is not in the gallery. Returns the
        number deleted."""
        ids = []
        for template_id in template_ids:
            if isinstance(template_id, bool) or not isinstance(template_id, (int, np.integer)):
                raise GalleryError(f"a template id must be an integer, not {type(template_id).__name__}")
            ids.append(int(template_id))
        ids = sorted(set(ids))
        if not ids:
            return 0
        with self._write() as conn:
            for template_id in ids:
                if conn.execute("SELECT 1 FROM templates WHERE id = ?", (template_id,)).fetchone() is None:
                    raise GalleryError(f"no template with id {template_id} in the gallery; nothing was deleted")
            conn.executemany("DELETE FROM templates WHERE id = ?", [(i,) for i in ids])
        self._forget_search_index()
        self.wipe_free_space()
        logger.info("gallery: removed %d template(s)", len(ids))
        return len(ids)


class SqliteGallery(Gallery, GalleryDatabase):
    """A gallery in one SQLite file (the default)."""


@functools.cache
def _server_engine() -> type[Gallery]:
    """The gallery on a PostgreSQL server, made when first needed (psycopg is imported
    only by those who use a server)."""
    from faceapp.storage.postgres import PostgresDatabase

    class PostgresGallery(Gallery, PostgresDatabase):
        """A gallery on a PostgreSQL server (see :mod:`faceapp.storage.postgres`)."""

    return PostgresGallery
