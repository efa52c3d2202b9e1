"""The gallery's values and their validation: people, templates, imports.

Everything that enters the gallery goes through :func:`prepare_all` (templates) and
:func:`normalize_name` (names) first, so a bad value is refused with one line before
any transaction starts.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from faceapp.errors import GalleryError, ModelMismatchError

MAX_NAME_LENGTH = 100
MAX_THUMBNAIL_BYTES = 1 << 20  # a 224x224 PNG/JPEG is a few tens of KiB

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"

OnConflict = Literal["merge", "skip", "error"]


# --------------------------------------------------------------------------- data


KINDS = ("positive", "negative")  # a template of the person, or a face that is *not* them


@dataclass(frozen=True)
class Person:
    """One enrolled person. ``created_at`` is unix time (s); ``template_count`` counts
    their templates, ``negative_count`` the faces marked "not them"; ``threshold`` is
    their own decision threshold, or None (automatic)."""

    id: int
    name: str
    created_at: float
    template_count: int
    negative_count: int = 0
    threshold: float | None = None


@dataclass(frozen=True)
class NewTemplate:
    """A template the pipeline hands in.

    ``embedding``: float32 (D,), L2-normalised (length 1 within 1e-3; stored as float32).
    ``thumbnail``: PNG or JPEG encoded bytes of the face, or None: the 224x224 wide crop
    (:mod:`faceapp.vision.face_crop`) since the fused model, the aligned 112x112 face before.
    ``created_at``: unix time; None means "now" (archives set it to keep the original
    time). ``kind``: "positive" (the person) or "negative" (a face that is not them).
    """

    embedding: np.ndarray
    model_id: str
    quality: float = 1.0
    thumbnail: bytes | None = None
    source: str = ""
    created_at: float | None = None
    kind: str = "positive"


@dataclass(frozen=True)
class Template:
    """A stored template. ``embedding``: float32 (D,)."""

    id: int
    person_id: int
    embedding: np.ndarray
    model_id: str
    quality: float
    thumbnail: bytes | None
    source: str
    created_at: float
    kind: str = "positive"


@dataclass(frozen=True)
class GalleryMatrix:
    """Everything matching needs, in one shot.

    ``embeddings``: float32 (N, D), one row per template (shape (0, 0) for an empty gallery).
    ``person_index``: int64 (N,), index into ``names`` for each row.
    ``names``: one per person with >= 1 template, in :meth:`Gallery.people` order.
    ``model_id``: the model of every row, or None when N == 0.
    """

    embeddings: np.ndarray
    person_index: np.ndarray
    names: tuple[str, ...]
    model_id: str | None
    negatives: np.ndarray | None = None  # float32 (M, D): faces that are *not* the person negative_index names
    negative_index: np.ndarray | None = None  # int64 (M,), into names
    thresholds: np.ndarray | None = None  # float64 (len(names),): each person's own threshold, NaN = automatic
    template_ids: np.ndarray | None = None  # int64 (N,): the stored id of each row of embeddings (None: not known)


@dataclass(frozen=True)
class PersonRecord:
    """One person for :meth:`Gallery.import_people`; ``templates`` may be empty."""

    name: str
    created_at: float
    templates: tuple[NewTemplate, ...]
    threshold: float | None = None


@dataclass(frozen=True)
class ImportSummary:
    """What :meth:`Gallery.import_people` (and ``archive.import_gallery``) did."""

    people_added: int
    people_merged: int
    people_skipped: int
    templates_added: int


@dataclass(frozen=True)
class TemplateRow:
    """A validated template ready to insert: embedding already little-endian float32 bytes."""

    blob: bytes
    dim: int
    model_id: str
    quality: float
    thumbnail: bytes | None
    source: str
    created_at: float | None
    kind: str = "positive"


# --------------------------------------------------------------------------- validation


#: Invisible characters a name may hold inside: the zero-width (non-)joiners that some
#: scripts need (Persian, Indic). Every other format character (zero-width space, BOM,
#: bidirectional overrides that can disguise a name) is refused.
ALLOWED_INVISIBLE = frozenset("\u200c\u200d")
#: Names that read like an unmatched face: refused, whatever their case.
RESERVED_NAMES = frozenset({"unknown", "unknown person", "nobody"})
_RESERVED_PATTERN = re.compile(r"unknown\s*#\s*\d+")

#: Time stamps outside these bounds (1970-01-01 .. 2100-01-01) are not believed.
MIN_TIMESTAMP = 0.0
MAX_TIMESTAMP = 4_102_444_800.0
#: A stored embedding's L2 norm must be 1 within this (embeddings are unit vectors).
UNIT_TOLERANCE = 1e-3


def normalize_name(name: object) -> str:
    """Return the canonical form of a person's name (NFC, stripped) or raise GalleryError.

    Refuses non-strings; names empty, blank or invisible once stripped; names longer than
    MAX_NAME_LENGTH characters; control, line-separator and format characters (other
    than the zero-width joiners some scripts need); and the reserved names that read like
    an unmatched face ("unknown", "Unknown #3").
    """
    if not isinstance(name, str):
        raise GalleryError(f"a person's name must be text, not {type(name).__name__}")
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise GalleryError("a person's name cannot be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise GalleryError(f"a person's name must be at most {MAX_NAME_LENGTH} characters (got {len(name)})")
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in name):
        raise GalleryError(f"a person's name cannot contain control characters: {name!r}")
    if any(unicodedata.category(c) == "Cf" and c not in ALLOWED_INVISIBLE for c in name):
        raise GalleryError(f"a person's name cannot contain invisible formatting characters: {name!r}")
    if not name_key(name):
        raise GalleryError(f"a person's name must have visible letters or digits: {name!r}")
    if name_key(name) in RESERVED_NAMES or _RESERVED_PATTERN.fullmatch(name_key(name)):
        raise GalleryError(f"'{name}' is reserved: it reads like a face nobody was recognised as; choose another name")
    return name


#: Characters that draw nothing though Unicode calls them letters or symbols: the Hangul
#: fillers and the blank braille pattern.
BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def name_key(name: str) -> str:
    """What two names that look the same share: NFKC (full-width letters become plain
    ones), case-folded, invisible and blank-looking characters dropped, white space
    collapsed ("Obama", "obama\u200d " and "ｏｂａｍａ" have one key). A name of only
    combining marks has an empty key."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    visible = "".join(c for c in folded if unicodedata.category(c) not in ("Cf", "Cc") and c not in BLANK_LOOKING)
    if all(unicodedata.category(c).startswith("M") or c.isspace() for c in visible):
        return ""
    return " ".join(visible.split())


def lookup_name(name: object) -> str:
    """Canonical form of a name used only for lookup (no validation beyond the type)."""
    if not isinstance(name, str):
        raise GalleryError(f"a person's name must be text, not {type(name).__name__}")
    return unicodedata.normalize("NFC", name).strip()


def timestamp(value: object, what: str) -> float:
    """A unix time within [MIN_TIMESTAMP, MAX_TIMESTAMP], else GalleryError."""
    out = finite_number(value, what)
    if not MIN_TIMESTAMP <= out <= MAX_TIMESTAMP:
        raise GalleryError(f"{what} is not a plausible time ({out:g} s since 1970)")
    return out


def finite_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise GalleryError(f"{what} must be a number, not {type(value).__name__}")
    try:
        out = float(value)
    except OverflowError:
        raise GalleryError(f"{what} must be finite (got a huge integer)") from None
    if not math.isfinite(out):
        raise GalleryError(f"{what} must be finite (got {out})")
    return out


def prepare(t: NewTemplate, index: int) -> TemplateRow:
    """Validate one NewTemplate and convert it to an insertable row."""
    where = f"template #{index + 1}"
    if not isinstance(t, NewTemplate):
        raise GalleryError(f"{where} is a {type(t).__name__}, not a NewTemplate")
    emb = t.embedding
    if not isinstance(emb, np.ndarray):
        raise GalleryError(f"{where}: embedding must be a numpy array, not {type(emb).__name__}")
    if emb.ndim != 1 or emb.shape[0] == 0:
        raise GalleryError(f"{where}: embedding must be a non-empty 1-D array (got shape {emb.shape})")
    if emb.dtype.kind != "f":
        raise GalleryError(f"{where}: embedding must be a float array (got dtype {emb.dtype})")
    with np.errstate(over="ignore", invalid="ignore"):
        vec = emb.astype("<f4")
    if not np.all(np.isfinite(vec)):
        raise GalleryError(f"{where}: embedding contains NaN or infinite values")
    norm = float(np.linalg.norm(vec.astype(np.float64)))
    if not norm > 1e-6:
        raise GalleryError(f"{where}: embedding is all zeros")
    if abs(norm - 1.0) > UNIT_TOLERANCE:
        raise GalleryError(f"{where}: embedding is not a unit vector (its length is {norm:.6g}, not 1)")
    if not isinstance(t.model_id, str) or not t.model_id.strip():
        raise GalleryError(f"{where}: model_id must be a non-empty string")
    quality = finite_number(t.quality, f"{where}: quality")
    if not 0.0 <= quality <= 1.0:
        raise GalleryError(f"{where}: quality must be between 0 and 1 (got {quality:g})")
    thumb = t.thumbnail
    if thumb is not None:
        if not isinstance(thumb, (bytes, bytearray, memoryview)):
            raise GalleryError(f"{where}: thumbnail must be encoded image bytes or None")
        thumb = bytes(thumb)
        if len(thumb) > MAX_THUMBNAIL_BYTES:
            raise GalleryError(
                f"{where}: thumbnail is too large ({len(thumb)} bytes, max {MAX_THUMBNAIL_BYTES})"
            )
        if not thumb.startswith((_PNG_MAGIC, _JPEG_MAGIC)):
            raise GalleryError(f"{where}: thumbnail is not PNG or JPEG data")
    if not isinstance(t.source, str):
        raise GalleryError(f"{where}: source must be a string")
    created = None if t.created_at is None else timestamp(t.created_at, f"{where}: created_at")
    if t.kind not in KINDS:
        raise GalleryError(f"{where}: kind must be one of {', '.join(KINDS)}, not {t.kind!r}")
    return TemplateRow(vec.tobytes(), int(vec.shape[0]), t.model_id, quality, thumb, t.source, created, t.kind)


def prepare_all(templates: Sequence[NewTemplate]) -> list[TemplateRow]:
    """Validate a batch: each template, and one model_id and one dim across the batch."""
    if isinstance(templates, NewTemplate) or not isinstance(templates, Sequence):
        raise GalleryError("templates must be a sequence of NewTemplate")
    rows = [prepare(t, i) for i, t in enumerate(templates)]
    for r in rows[1:]:
        if r.model_id != rows[0].model_id:
            raise ModelMismatchError(
                f"templates from different models in one batch ({rows[0].model_id!r} and {r.model_id!r})"
            )
        if r.dim != rows[0].dim:
            raise GalleryError(f"templates of different dimensions in one batch ({rows[0].dim} and {r.dim})")
    return rows



def prepare_all_consistent(rows: Sequence[TemplateRow]) -> None:
    """One model_id and one dim across already-validated rows of several people."""
    for r in rows[1:]:
        if r.model_id != rows[0].model_id:
            raise ModelMismatchError(
                f"templates from different models in one import ({rows[0].model_id!r} and {r.model_id!r})"
            )
        if r.dim != rows[0].dim:
            raise GalleryError(f"templates of different dimensions in one import ({rows[0].dim} and {r.dim})")


# --------------------------------------------------------------------------- stored rows
# A gallery file can be damaged or edited by hand: every row read back is checked like an
# input, and a bad one is reported as corruption in one line (never a crash, never NaN).


def _stored(value: object, what: str, where: str) -> float:
    try:
        return finite_number(value if not isinstance(value, str) else float(value), what)
    except (GalleryError, ValueError):
        raise GalleryError(f"{where} is corrupt: {what} is {value!r:.40}, not a number") from None


def decode_person(row: tuple, where: str) -> Person:
    """``(id, name, created_at, templates, negatives, threshold)`` from the database -> Person."""
    created = _stored(row[2], f"the time person {row[0]} was added", where)
    if not MIN_TIMESTAMP <= created <= MAX_TIMESTAMP or not isinstance(row[1], str):
        raise GalleryError(f"{where} is corrupt: person {row[0]} has an impossible name or time ({created:g})")
    threshold = None if row[5] is None else decode_threshold(row[5], where)
    return Person(int(row[0]), row[1], created, int(row[3]), int(row[4]), threshold)


def decode_threshold(value: object, where: str) -> float:
    """A stored per-person threshold, checked."""
    threshold = _stored(value, "a person's threshold", where)
    if not -1.0 <= threshold <= 1.0:
        raise GalleryError(f"{where} is corrupt: a person's threshold is {threshold:g}")
    return threshold


def decode_template(row: tuple, embedding: bytes, thumbnail: bytes | None, dim: int, where: str) -> Template:
    """A template row (``id, person_id, _, model_id, quality, _, source, created_at``)
    with its opened blobs -> Template, checked (finite unit embedding of ``dim`` floats)."""
    tid = int(row[0])
    if not isinstance(embedding, bytes) or len(embedding) != 4 * dim or dim < 1:
        raise GalleryError(f"{where} is corrupt: template {tid} has an embedding of the wrong size")
    vector = np.frombuffer(embedding, dtype="<f4").astype(np.float32)
    check_unit_rows(vector[None], where, f"template {tid}")
    quality = _stored(row[4], f"the quality of template {tid}", where)
    created = _stored(row[7], f"the time of template {tid}", where)
    if not MIN_TIMESTAMP <= created <= MAX_TIMESTAMP:
        raise GalleryError(f"{where} is corrupt: template {tid} has an impossible time ({created:g})")
    kind = row[9] if len(row) > 9 else "positive"
    if kind not in KINDS:
        raise GalleryError(f"{where} is corrupt: template {tid} is of the unknown kind {kind!r}")
    return Template(tid, int(row[1]), vector, str(row[3]), quality, thumbnail, str(row[6]), created, kind)


def check_unit_rows(embeddings: np.ndarray, where: str, what: str = "a template") -> None:
    """Raise GalleryError (corruption) unless every row is finite and of length 1."""
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.linalg.norm(embeddings.astype(np.float64), axis=1)
    bad = ~np.isfinite(norms) | (np.abs(norms - 1.0) > UNIT_TOLERANCE)
    if np.any(bad):
        raise GalleryError(f"{where} is corrupt: {what} has an embedding that is not a finite unit vector")


def sort_key(name: str) -> tuple[str, str]:
    return (name.casefold(), name)
