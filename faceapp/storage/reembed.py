"""Move a gallery to another embedding model (``faceapp gallery reembed``).

Every template whose face picture (the "thumbnail": JPEG/PNG of the BGR 224x224 wide crop,
:mod:`faceapp.vision.face_crop`, or in older galleries the 112x112 ArcFace crop) is stored
is embedded again with the new model; the gallery then switches to the new ``model_id`` in
one transaction (:meth:`faceapp.storage.gallery.Gallery.replace_embeddings`). A model that
also needs dlib's chip (the fused one) can only use wide crops: the older 112x112 ones are
too tight. Templates that cannot be recomputed are removed in the same transaction (only
with ``force``), and their people are reported, those left with no template at all as
"must be re-enrolled". ``dry_run`` reports without writing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceapp.errors import GalleryError
from faceapp.storage.gallery import Gallery
from faceapp.vision.alignment import ALIGNED_SIZE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReembedReport:
    """What :func:`reembed_gallery` did (or would do, with ``dry_run``).

    Attributes:
        old_model_ids: the model ids found in the gallery before.
        new_model_id: the model now used.
        reembedded: templates recomputed from their stored faces.
        removed: templates without a (readable, wide enough) stored face, removed.
        too_tight: of those, how many hold only an older 112x112 crop (the model needs more).
        kept: templates already made by the new model whose stored face cannot be
            recomputed (``force`` on a gallery of that model): kept as they are.
        must_reenroll: people left with no template: enroll them again.
        partly_reembedded: people who kept some templates but lost others.
    """

    old_model_ids: tuple[str, ...]
    new_model_id: str
    reembedded: int
    removed: int
    must_reenroll: tuple[str, ...]
    partly_reembedded: tuple[str, ...]
    dry_run: bool
    too_tight: int = 0
    kept: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "old_model_ids": list(self.old_model_ids), "new_model_id": self.new_model_id,
            "reembedded": self.reembedded, "removed": self.removed, "too_tight": self.too_tight, "kept": self.kept,
            "must_reenroll": list(self.must_reenroll), "partly_reembedded": list(self.partly_reembedded),
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class StoredFace:
    """A stored face picture, decoded: ``tight`` the BGR uint8 ``(112, 112, 3)`` ArcFace crop;
    ``chip`` dlib's BGR uint8 ``(150, 150, 3)`` chip, or None for an older 112x112 picture."""

    tight: np.ndarray
    chip: np.ndarray | None


def _decode(data: bytes | None) -> np.ndarray | None:
    if not data:
        return None
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return image if image is not None and image.ndim == 3 else None


def decode_face(data: bytes | None) -> StoredFace | None:
    """A stored thumbnail -> :class:`StoredFace`, or None if absent/unreadable."""
    from faceapp.vision.face_crop import chip_from_wide, is_wide, tight_from_wide

    image = _decode(data)
    if image is None:
        return None
    if is_wide(image):
        return StoredFace(tight_from_wide(image), chip_from_wide(image))
    if image.shape[:2] != (ALIGNED_SIZE, ALIGNED_SIZE):
        import cv2

        image = cv2.resize(image, (ALIGNED_SIZE, ALIGNED_SIZE), interpolation=cv2.INTER_AREA)
    return StoredFace(image, None)


def decode_thumbnail(data: bytes | None) -> np.ndarray | None:
    """A stored thumbnail -> the BGR uint8 ``(112, 112, 3)`` ArcFace crop, or None if absent/unreadable."""
    face = decode_face(data)
    return None if face is None else face.tight


def embed_stored(embedder: Any, faces: list[StoredFace]) -> np.ndarray:
    """The embeddings (float32 ``(N, D)``) of stored faces; each must have a chip when the
    embedder ``needs_chip``."""
    from faceapp.embedding.flip import embed_faces

    chips = np.stack([f.chip for f in faces]) if _needs_chip(embedder) else None
    return embed_faces(embedder, np.stack([f.tight for f in faces]), chips)


def _needs_chip(embedder: Any) -> bool:
    return bool(getattr(embedder, "needs_chip", False))  # duck-typed embedders (tests' fakes) have no attribute


def usable(face: StoredFace | None, embedder: Any) -> bool:
    """Whether ``embedder`` can embed this stored face (a fused model needs its chip)."""
    return face is not None and (face.chip is not None or not _needs_chip(embedder))


def reembed_gallery(
    gallery: Gallery, embedder: Any, *, dry_run: bool = False, batch_size: int = 64, force: bool = False,
) -> ReembedReport:
    """Recompute every template of ``gallery`` with ``embedder`` (an
    :class:`~faceapp.embedding.runtime.Embedder`: ``embed(BGR (N,112,112,3)) -> (N, D)``,
    ``model_id``; or an :class:`~faceapp.embedding.ensemble.EnsembleEmbedder`, which takes
    dlib's chips too).

    Templates without a stored face the model can use (none, unreadable, or for the fused
    model an older 112x112 crop) cannot be recomputed and must be removed: that happens
    only with ``force`` (else GalleryError names who would lose templates). A gallery
    already made entirely by ``embedder``'s model is left as it is unless ``force``.
    """
    people, templates = gallery.snapshot()
    if not force and templates and all(t.model_id == embedder.model_id for t in templates):
        return ReembedReport((embedder.model_id,), embedder.model_id, 0, 0, (), (), dry_run)
    names = {p.id: p.name for p in people}
    faces, ids, missing, tight = [], [], [], 0
    kept: dict[int, np.ndarray] = {}  # already the new model's, and nothing to recompute them from: left as they are
    for template in templates:
        face = decode_face(template.thumbnail)
        if usable(face, embedder):
            faces.append(face)
            ids.append(template.id)
        elif template.model_id == embedder.model_id:
            kept[template.id] = template.embedding
        else:
            missing.append(template)
            tight += face is not None
    embeddings: dict[int, np.ndarray] = {}
    for start in range(0, len(faces), batch_size):
        batch = embed_stored(embedder, faces[start : start + batch_size])
        embeddings.update(zip(ids[start : start + batch_size], batch))
    # Who must be enrolled again depends on their own (positive) templates; faces marked
    # "not them" are re-embedded (or removed) alike but name nobody.
    kept_people = {t.person_id for t in templates if (t.id in embeddings or t.id in kept) and t.kind == "positive"}
    lost_people = {t.person_id for t in missing if t.kind == "positive"}
    must = tuple(sorted((names[p] for p in lost_people - kept_people), key=str.casefold))
    partly = tuple(sorted((names[p] for p in lost_people & kept_people), key=str.casefold))
    no_template = tuple(p.name for p in people if p.template_count == 0)
    report = ReembedReport(
        old_model_ids=tuple(sorted({t.model_id for t in templates})),
        new_model_id=embedder.model_id,
        reembedded=len(embeddings),
        removed=len(missing),
        must_reenroll=tuple(sorted(set(must) | set(no_template), key=str.casefold)),
        partly_reembedded=partly,
        dry_run=dry_run,
        too_tight=tight,
        kept=len(kept),
    )
    if missing and not dry_run and not force:
        who = ", ".join(sorted({names[t.person_id] for t in missing}, key=str.casefold))
        why = (f"no stored face wide enough for model {embedder.model_id!r} (older 112x112 crops, or none)"
               if tight else "no stored face to recompute from")
        raise GalleryError(
            f"{len(missing)} template(s) have {why} ({who}); "
            "re-run with --force to remove them (see --dry-run), nothing was changed"
        )
    if not dry_run:
        gallery.replace_embeddings({**embeddings, **kept}, embedder.model_id, remove=[t.id for t in missing])
        _reembed_sightings(gallery, embedder, batch_size)
    logger.info("re-embedding: %s", report)
    return report


def _reembed_sightings(gallery: Gallery, embedder: Any, batch_size: int) -> None:
    """Sightings follow the model too: each one with a stored crop the new model can use
    gets that crop's embedding from it (the others keep the old model's and are left out of
    the visitors' clustering, which only compares faces of one model)."""
    sightings = [s for s in gallery.sightings() if s.model_id != embedder.model_id]
    crops = [(s.id, decode_face(s.thumbnail)) for s in sightings]
    crops = [(sid, face) for sid, face in crops if usable(face, embedder)]
    new: dict[int, np.ndarray] = {}
    for start in range(0, len(crops), batch_size):
        part = crops[start : start + batch_size]
        new.update(zip((sid for sid, _ in part), embed_stored(embedder, [face for _, face in part])))
    if new:
        gallery.replace_sighting_embeddings(new, embedder.model_id)
    if len(new) < len(sightings):
        logger.warning("%d sighting(s) have no stored crop this model can use: they keep the old model's embeddings", len(sightings) - len(new))


def format_report(report: ReembedReport) -> str:
    """Lines for the terminal."""
    verb = "would re-embed" if report.dry_run else "re-embedded"
    lines = [(f"{verb} {report.reembedded} template(s) with model {report.new_model_id!r} "
             f"(was {', '.join(report.old_model_ids) or 'empty'})")]
    if report.removed:
        tight = f" ({report.too_tight} hold only an older 112x112 crop, too tight for this model)" if report.too_tight else ""
        lines.append(f"{'would remove' if report.dry_run else 'removed'} {report.removed} template(s) without a usable stored face{tight}")
    if report.kept:
        lines.append(f"kept {report.kept} template(s) already made by this model as they are (no stored face to recompute them from)")
    if report.partly_reembedded:
        lines.append("kept only some templates of: " + ", ".join(report.partly_reembedded))
    if report.must_reenroll:
        lines.append("must be enrolled again (no template left; faceapp enroll NAME PHOTO... --add): " + ", ".join(report.must_reenroll))
    return "\n".join(lines)
