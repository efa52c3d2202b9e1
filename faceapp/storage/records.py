"""The gallery's values and their validation: people, templates, imports.

Everything that enters the gallery goes through :func:`prepare_all` (templates) and
:func:`normalize_name` (names) first, so a bad value is refused with one line before
any transaction starts.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from faceapp.errors import GalleryError, ModelMismatchError

MAX_NAME_LENGTH = 100
MAX_THUMBNAIL_BYTES = 1 << 20  # a 112x112 PNG/JPEG is a few tens of KiB

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"

OnConflict = Literal["merge", "skip", "error"]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Person:
    """One enrolled person. ``created_at`` is unix time (s)."""

    id: int
    name: str
    created_at: float
    template_count: int


@dataclass(frozen=True)
class NewTemplate:
    """A template the pipeline hands in.

    ``embedding``: float32 (D,), L2-normalised (any finite float 1-D array is accepted and
    stored as float32). ``thumbnail``: PNG or JPEG encoded bytes of the aligned 112x112
    face, or None. ``created_at``: unix time; None means "now" (archives set it to keep
    the original time).
    """

    embedding: np.ndarray
    model_id: str
    quality: float = 1.0
    thumbnail: bytes | None = None
    source: str = ""
    created_at: float | None = None


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


@dataclass(frozen=True)
class PersonRecord:
    """One person for :meth:`Gallery.import_people`; ``templates`` may be empty."""

    name: str
    created_at: float
    templates: tuple[NewTemplate, ...]


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


# --------------------------------------------------------------------------- validation


def normalize_name(name: object) -> str:
    """Return the canonical form of a person's name (NFC, stripped) or raise GalleryError.

    Rejects non-strings, empty names, names longer than MAX_NAME_LENGTH characters and
    names containing control or line/paragraph-separator characters.
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
    return name


def lookup_name(name: object) -> str:
    """Canonical form of a name used only for lookup (no validation beyond the type)."""
    if not isinstance(name, str):
        raise GalleryError(f"a person's name must be text, not {type(name).__name__}")
    return unicodedata.normalize("NFC", name).strip()


def finite_number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise GalleryError(f"{what} must be a number, not {type(value).__name__}")
    out = float(value)
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
    if not float(np.linalg.norm(vec.astype(np.float64))) > 1e-6:
        raise GalleryError(f"{where}: embedding is all zeros")
    if not isinstance(t.model_id, str) or not t.model_id.strip():
        raise GalleryError(f"{where}: model_id must be a non-empty string")
    quality = finite_number(t.quality, f"{where}: quality")
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
    created = None if t.created_at is None else finite_number(t.created_at, f"{where}: created_at")
    return TemplateRow(vec.tobytes(), int(vec.shape[0]), t.model_id, quality, thumb, t.source, created)


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


def sort_key(name: str) -> tuple[str, str]:
    return (name.casefold(), name)
