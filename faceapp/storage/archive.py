"""Export a gallery to one zip file, and import such a file into a gallery.

Archive layout (format "faceapp-gallery", version 2)::

    manifest.json            see below
    memory/...               sightings' embeddings and crops (version 3)
    embeddings/NNNN.npy      float32 (n, D) per person with n >= 1 templates (row i = template i)
    thumbnails/NNNN.png|jpg  one per template that has a thumbnail, stored as given

manifest.json::

    {"format": "faceapp-gallery", "version": 2, "model_id": str | null, "dim": int | null,
     "created_at": float,
     "people": [{"name": str, "created_at": float, "threshold": float | null,
                 "templates": [{"id": int, "quality": float, "source": str, "created_at": float,
                                "embedding_file": str, "embedding_row": int,
                                "thumbnail": str | null, "kind": "positive" | "negative"}]}]}

Version 3 adds the people memory (sightings and visitors: :mod:`faceapp.storage.archive_memory`).
Version 1 archives (no "kind", no "threshold") and version 2 (no memory) are read too.

Importing validates the whole archive in memory (sizes are capped before anything is
read; ``.npy`` headers are checked against the data before any array is allocated and
nothing is ever unpickled) before the gallery is touched, then writes it in one
transaction through :meth:`Gallery.import_people`.

Encrypted exports (``passphrase=``): the whole zip above is the payload of an encrypted
FaceApp file (:func:`faceapp.storage.crypto.seal_encrypted`: magic ``FACEAPP-ENC1``, a small JSON
header with the scrypt parameters, then the AES-GCM sealed zip). Importing one needs the
passphrase (PassphraseError when it is missing or wrong).
"""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.errors import FaceAppError, GalleryError, ModelMismatchError
from faceapp.files import os_error_line, regular_target, remove_empty_folders
from faceapp.storage import crypto
from faceapp.storage.archive_io import BadArchive as _Bad
from faceapp.storage.archive_io import check_member_name as _check_member_name
from faceapp.storage.archive_io import integer as _int
from faceapp.storage.archive_io import load_npy as _load_npy
from faceapp.storage.archive_io import number as _num
from faceapp.storage.archive_io import obj as _obj
from faceapp.storage.archive_io import read_member as _read_member
from faceapp.storage.archive_memory import memory_section, parse_memory
from faceapp.storage.gallery import (
    MAX_THUMBNAIL_BYTES,
    Gallery,
    ImportSummary,
    NewTemplate,
    OnConflict,
    PersonRecord,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ImportSummary",
    "archive_is_encrypted",
    "export_gallery",
    "import_gallery",
]

logger = logging.getLogger(__name__)

FORMAT_NAME = "faceapp-gallery"
FORMAT_VERSION = 3  # 3: the people memory (archive_memory); 2: template "kind", person "threshold"; 1 and 2 are read
READABLE_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"

MAX_MEMBER_BYTES = 64 << 20  # uncompressed size of any one member
MAX_TOTAL_BYTES = 2 << 30  # uncompressed size of all members together
MAX_MANIFEST_BYTES = 16 << 20
MAX_MEMBERS = 200_000
MAX_ENCRYPTED_BYTES = 1 << 30  # an encrypted archive is decrypted in memory
ENCRYPTED_FORMAT = "faceapp-gallery-zip"


# --------------------------------------------------------------------------- export


def export_gallery(gallery: Gallery, path: str | os.PathLike[str], *, passphrase: str | None = None) -> Path:
    """Write every person and template of ``gallery`` to the zip file ``path``.

    The file is written to a temporary name next to ``path`` and renamed into place, so
    a failed export leaves no partial file. With ``passphrase`` the file is encrypted
    (see the module docstring). Returns the path written.
    """
    try:
        dest = regular_target(path, "export")
    except FaceAppError as error:
        raise GalleryError(str(error)) from None
    people, templates = gallery.snapshot()
    model_ids = {t.model_id for t in templates}
    if len(model_ids) > 1:
        a, b = sorted(model_ids)[:2]
        raise ModelMismatchError(f"the gallery mixes templates from models {a!r} and {b!r}; cannot export it")
    dims = {int(t.embedding.shape[0]) for t in templates}
    by_person: dict[int, list] = {p.id: [] for p in people}
    for t in templates:
        by_person.setdefault(t.person_id, []).append(t)

    members: list[tuple[str, bytes]] = []
    entries: list[dict[str, Any]] = []
    next_id = 1
    for pi, person in enumerate(people):
        ts = by_person.get(person.id, [])
        emb_name = f"embeddings/{pi:04d}.npy"
        if ts:
            buf = io.BytesIO()
            np.save(buf, np.stack([t.embedding for t in ts]).astype("<f4"), allow_pickle=False)
            members.append((emb_name, buf.getvalue()))
        tmpl_entries = []
        for row, t in enumerate(ts):
            thumb_name = None
            if t.thumbnail is not None and not t.thumbnail.startswith((b"\x89PNG", b"\xff\xd8")):
                logger.warning("%r: a thumbnail that is neither PNG nor JPEG is left out", person.name)
            elif t.thumbnail is not None:
                ext = "png" if t.thumbnail.startswith(b"\x89PNG") else "jpg"
                thumb_name = f"thumbnails/{next_id:06d}.{ext}"
                members.append((thumb_name, t.thumbnail))
            tmpl_entries.append(
                {
                    "id": next_id,
                    "quality": t.quality,
                    "source": t.source,
                    "created_at": t.created_at,
                    "embedding_file": emb_name,
                    "embedding_row": row,
                    "thumbnail": thumb_name,
                    "kind": t.kind,
                }
            )
            next_id += 1
        entries.append({"name": person.name, "created_at": person.created_at, "threshold": person.threshold,
                        "templates": tmpl_entries})

    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model_id": next(iter(model_ids)) if model_ids else None,
        "dim": dims.pop() if len(dims) == 1 else None,
        "created_at": time.time(),
        "people": entries,
    }
    memory, memory_members = memory_section(gallery)
    if memory is not None:
        manifest["memory"] = memory
        members += memory_members
    manifest_bytes = json.dumps(manifest, indent=1, ensure_ascii=False, allow_nan=False).encode("utf-8")

    made = [p for p in dest.parents if not p.exists()]  # innermost first: removed again on failure
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as e:
        remove_empty_folders(made)
        raise GalleryError(f"cannot write {dest}: {os_error_line(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            target: Any = io.BytesIO() if passphrase is not None else f
            with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(MANIFEST, manifest_bytes)
                for name, data in members:
                    # PNG/JPEG are already compressed
                    method = zipfile.ZIP_STORED if name.startswith(("thumbnails/", "memory/crops/")) else zipfile.ZIP_DEFLATED
                    zf.writestr(name, data, compress_type=method)
            if passphrase is not None:
                f.write(crypto.seal_encrypted(target.getvalue(), passphrase, fmt=ENCRYPTED_FORMAT))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        remove_empty_folders(made)
        if isinstance(e, OSError):
            raise GalleryError(f"cannot write {dest}: {os_error_line(e)}") from None
        raise
    logger.info("exported %d people, %d templates to %s", len(people), len(templates), dest)
    return dest


# --------------------------------------------------------------------------- import


def archive_is_encrypted(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is an encrypted export (the app must ask for its passphrase).
    False for anything that is not a regular file (never opened: a FIFO would block)."""
    try:
        if not stat.S_ISREG(os.stat(os.fspath(path)).st_mode):
            return False
        with open(os.fspath(path), "rb") as f:
            return crypto.is_encrypted_file(f.read(len(crypto.ENCRYPTED_MAGIC)))
    except OSError:
        return False


def archive_model_id(path: str | os.PathLike[str], passphrase: str | None = None) -> str | None:
    """The model id an archive's templates were made by (None when it holds none); GalleryError if unreadable."""
    src = Path(os.fspath(path))
    try:
        return _read_archive(src, passphrase)[1]
    except _Bad as e:
        raise GalleryError(f"{src} is not a valid FaceApp gallery archive: {e}") from e
    except OSError as e:
        raise GalleryError(f"cannot read {src}: {os_error_line(e)}") from None


def import_gallery(
    gallery: Gallery,
    path: str | os.PathLike[str],
    *,
    on_conflict: OnConflict = "error",
    passphrase: str | None = None,
    model_id: str | None = None,
    dim: int | None = None,
) -> ImportSummary:
    """Import the archive ``path`` into ``gallery`` in one transaction.

    Everything is validated first; any problem raises GalleryError (or ModelMismatchError
    when the archive's model differs from the gallery's, or from ``model_id``, the model
    in use) and leaves the gallery untouched. Every embedding must have ``dim`` numbers
    (the model card's) and be a finite unit vector. An encrypted archive needs
    ``passphrase`` (PassphraseError when missing or wrong).
    """
    src = Path(os.fspath(path))
    if on_conflict not in ("merge", "skip", "error"):
        raise GalleryError(f"on_conflict must be 'merge', 'skip' or 'error', not {on_conflict!r}")
    try:
        records, archive_model_id, sightings = _read_archive(src, passphrase)
    except _Bad as e:
        raise GalleryError(f"{src} is not a valid FaceApp gallery archive: {e}") from e
    except OSError as e:
        raise GalleryError(f"cannot read {src}: {os_error_line(e)}") from None
    archive_model = archive_model_id
    stored = gallery.model_id()
    for wanted, whose in ((stored, "the gallery holds templates from"), (model_id, "the model in use is")):
        if archive_model is not None and wanted is not None and archive_model != wanted:
            from faceapp.embedding.modelcard import model_option

            how = (f"move the gallery to it first (faceapp gallery reembed --model {model_option(archive_model)}) or "
                   "import into a new gallery" if wanted == stored else f"import it with --model {model_option(archive_model)}")
            raise ModelMismatchError(
                f"the archive {src} holds templates from model {archive_model!r} but {whose} model {wanted!r}; {how}"
            )
    if dim is not None:
        for record in records:
            for template in record.templates:
                if template.embedding.shape != (dim,):
                    raise GalleryError(
                        f"cannot import {src}: {record.name!r} has embeddings of {template.embedding.size} numbers, "
                        f"but the model in use makes {dim}"
                    )
    try:
        summary = gallery.import_people(records, on_conflict=on_conflict, sightings=sightings)
    except GalleryError as e:
        raise type(e)(f"cannot import {src}: {e}") from e
    logger.info("imported %s from %s", summary, src)
    return summary


def _read_archive(src: Path, passphrase: str | None = None) -> tuple[list[PersonRecord], str | None, list]:
    """Parse and fully validate an archive; returns the records, the archive's model_id
    and its sightings."""
    if not src.is_file():
        raise _Bad("no such file") if not src.exists() else _Bad("not a file")
    source: Any = src
    with src.open("rb") as f:
        head = f.read(len(crypto.ENCRYPTED_MAGIC))
        if crypto.is_encrypted_file(head):
            size = os.fstat(f.fileno()).st_size
            if size > MAX_ENCRYPTED_BYTES:
                raise _Bad(f"the encrypted archive is too large ({size} bytes)")
            f.seek(0)
            data = f.read(MAX_ENCRYPTED_BYTES + 1)
            source = io.BytesIO(crypto.open_encrypted(data, passphrase, fmt=ENCRYPTED_FORMAT, what=str(src)))
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise _Bad(f"not a zip file ({e})") from e
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise _Bad(f"too many members ({len(infos)})")
        by_name: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            _check_member_name(info.filename)
            if info.filename in by_name:
                raise _Bad(f"duplicate member {info.filename!r}")
            if info.flag_bits & 0x1:
                raise _Bad(f"member {info.filename!r} is encrypted")
            if info.file_size > MAX_MEMBER_BYTES:
                raise _Bad(f"member {info.filename!r} is too large ({info.file_size} bytes)")
            total += info.file_size
            by_name[info.filename] = info
        if total > MAX_TOTAL_BYTES:
            raise _Bad(f"its contents are too large ({total} bytes)")
        try:
            return _parse(zf, by_name)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, zlib.error) as e:
            raise _Bad(f"damaged zip ({' '.join(str(e).split())})") from e


def _parse(zf: zipfile.ZipFile, by_name: dict[str, zipfile.ZipInfo]) -> tuple[list[PersonRecord], str | None, list]:
    info = by_name.get(MANIFEST)
    if info is None:
        raise _Bad(f"{MANIFEST} is missing")
    if info.file_size > MAX_MANIFEST_BYTES:
        raise _Bad(f"{MANIFEST} is too large")
    try:
        manifest = json.loads(_read_member(zf, info).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _Bad(f"{MANIFEST} is not valid JSON") from e
    manifest = _obj(manifest, MANIFEST)
    if manifest.get("format") != FORMAT_NAME:
        raise _Bad(f"format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    version = manifest.get("version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise _Bad(f"unsupported format version {version!r} (this FaceApp reads versions {', '.join(map(str, READABLE_VERSIONS))})")
    model_id = manifest.get("model_id")
    dim = manifest.get("dim")
    if model_id is not None and (not isinstance(model_id, str) or not model_id):
        raise _Bad("model_id must be a non-empty string or null")
    if dim is not None and (_int(dim, "dim") <= 0 or dim > 65536):
        raise _Bad(f"dim {dim} is out of range")
    people = manifest.get("people")
    if not isinstance(people, list):
        raise _Bad("people must be a list")

    # First pass: structure of every entry, and which rows of which .npy are used.
    parsed: list[tuple[str, float, list[dict[str, Any]], float | None]] = []
    rows_used: dict[str, set[int]] = {}
    ids: set[int] = set()
    names: set[str] = set()
    for i, p in enumerate(people):
        p = _obj(p, f"people[{i}]")
        name = p.get("name")
        if not isinstance(name, str):
            raise _Bad(f"people[{i}].name must be a string")
        if name in names:
            raise _Bad(f"the name {name!r} appears twice")
        names.add(name)
        created = _num(p.get("created_at"), f"created_at of {name!r}")
        threshold = p.get("threshold")
        if threshold is not None:
            threshold = _num(threshold, f"threshold of {name!r}")
        tlist = p.get("templates")
        if not isinstance(tlist, list):
            raise _Bad(f"templates of {name!r} must be a list")
        ts: list[dict[str, Any]] = []
        for j, t in enumerate(tlist):
            what = f"template {j} of {name!r}"
            t = _obj(t, what)
            tid = _int(t.get("id"), f"id of {what}")
            if tid in ids:
                raise _Bad(f"template id {tid} appears twice")
            ids.add(tid)
            emb_file = t.get("embedding_file")
            if not isinstance(emb_file, str) or emb_file not in by_name or not emb_file.endswith(".npy"):
                raise _Bad(f"embedding_file of {what} is missing from the archive")
            row = _int(t.get("embedding_row"), f"embedding_row of {what}")
            used = rows_used.setdefault(emb_file, set())
            if row < 0 or row in used:
                raise _Bad(f"embedding_row {row} of {what} is invalid or used twice")
            used.add(row)
            thumb = t.get("thumbnail")
            if thumb is not None and (not isinstance(thumb, str) or thumb not in by_name):
                raise _Bad(f"thumbnail of {what} is missing from the archive")
            if thumb is not None and by_name[thumb].file_size > MAX_THUMBNAIL_BYTES:
                # checked before reading: many large "thumbnails" would otherwise all sit in memory
                raise _Bad(f"thumbnail of {what} is too large ({by_name[thumb].file_size} bytes)")
            source = t.get("source", "")
            if not isinstance(source, str):
                raise _Bad(f"source of {what} must be a string")
            kind = t.get("kind", "positive")
            if kind not in ("positive", "negative"):
                raise _Bad(f"kind of {what} must be 'positive' or 'negative', not {kind!r:.40}")
            ts.append(
                {
                    "quality": _num(t.get("quality"), f"quality of {what}"),
                    "source": source,
                    "created_at": _num(t.get("created_at"), f"created_at of {what}"),
                    "embedding_file": emb_file,
                    "embedding_row": row,
                    "thumbnail": thumb,
                    "kind": kind,
                }
            )
        parsed.append((name, created, ts, threshold))
    if rows_used and (model_id is None or dim is None):
        raise _Bad("model_id and dim are required when there are templates")

    # Second pass: load each .npy once and check dtype, shape, values.
    arrays: dict[str, np.ndarray] = {}
    for fname, used in rows_used.items():
        arr = _load_npy(zf, by_name[fname])
        if arr.ndim != 2 or arr.shape[1] != dim:
            raise _Bad(f"{fname} has shape {arr.shape}, expected (n, {dim})")
        if arr.shape[0] != len(used) or used != set(range(len(used))):
            raise _Bad(f"{fname} has {arr.shape[0]} rows but the manifest uses {len(used)}")
        if not np.all(np.isfinite(arr)):
            raise _Bad(f"{fname} contains NaN or infinite values")
        arrays[fname] = arr

    thumbs: dict[str, bytes] = {}
    records: list[PersonRecord] = []
    for name, created, ts, threshold in parsed:
        news = []
        for t in ts:
            thumb = None
            if t["thumbnail"] is not None:
                thumb_name = t["thumbnail"]
                if thumb_name not in thumbs:
                    thumbs[thumb_name] = _read_member(zf, by_name[thumb_name])
                thumb = thumbs[thumb_name]
            news.append(
                NewTemplate(
                    embedding=arrays[t["embedding_file"]][t["embedding_row"]].copy(),
                    model_id=model_id,  # type: ignore[arg-type]  # checked above: set when rows exist
                    quality=t["quality"],
                    thumbnail=thumb,
                    source=t["source"],
                    created_at=t["created_at"],
                    kind=t["kind"],
                )
            )
        records.append(PersonRecord(name=name, created_at=created, templates=tuple(news), threshold=threshold))
    return records, model_id, parse_memory(manifest.get("memory"), zf, by_name)


