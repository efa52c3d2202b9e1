"""Corrections from the people memory: templates from sightings' crops, and the offline
re-clustering of unknown visitors.

* :func:`templates_from_sightings`: naming a visitor ("Unknown #N is Ann") or a sighting
  enrolls their best and most varied crops that pass the enrollment quality gate (size,
  sharpness, brightness), never two near-identical ones.
* :func:`recluster_gallery`: DBSCAN over every unknown sighting's faces
  (:func:`faceapp.recognition.visitors.recluster`); each new cluster keeps the visitor id
  most of its sightings had, so names on screen and in the log stay put where they can.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

from faceapp.recognition.visitors import VisitorConfig, recluster
from faceapp.storage.gallery import NewTemplate
from faceapp.types import Detection
from faceapp.vision.alignment import ALIGNED_SIZE, ARCFACE_TEMPLATE
from faceapp.vision.quality import QualityConfig, assess

logger = logging.getLogger(__name__)

MIN_SIGHTING_QUALITY = 0.6  # face_quality of ~80 px at a confident detection: the enrollment gate's size
MAX_TEMPLATES = 5
TOO_SIMILAR = 0.92  # two crops this alike add nothing to each other (SFace; a card may say: near_duplicate)


def crop_passes(thumbnail: bytes | None, quality: float, config: QualityConfig | None = None) -> bool:
    """Whether a sighting's stored crop is good enough to enroll: big enough when seen
    (its ``quality``), sharp, and neither too dark nor too bright."""
    from faceapp.storage.reembed import decode_thumbnail

    image = decode_thumbnail(thumbnail)
    if image is None or quality < MIN_SIGHTING_QUALITY:
        return False
    canonical = Detection((0.0, 0.0, float(ALIGNED_SIZE), float(ALIGNED_SIZE)), ARCFACE_TEMPLATE.astype(np.float32), 1.0)
    report = assess(image, canonical, dataclasses.replace(config or QualityConfig(), min_face_size=1.0))
    return report.ok


def templates_from_sightings(recognizer, sightings: Sequence) -> list[NewTemplate]:
    """Up to :data:`MAX_TEMPLATES` templates from the sightings' crops (best first, each
    different enough from those taken), only crops that pass :func:`crop_passes`. A
    sighting's own stored embedding is used when it was made by the model in use;
    otherwise its crop is embedded again, which a model that also needs dlib's wider chip
    (the fused one) cannot do from an older 112x112 crop: such sightings are passed over."""
    from faceapp.storage.reembed import decode_face, embed_stored, usable

    model_id, dim = recognizer.embedder.model_id, recognizer.card.embedding_dim
    too_similar = recognizer.card.near_duplicate or TOO_SIMILAR
    chosen: list[tuple[np.ndarray, bytes, object]] = []
    for sighting in sorted(sightings, key=lambda s: -s.quality):
        if not crop_passes(sighting.thumbnail, sighting.quality):
            continue
        stored = np.asarray(sighting.embeddings, np.float32)
        if sighting.model_id == model_id and stored.size and stored.size % dim == 0:
            embedding = stored.reshape(-1, dim)[0]  # the sighting's best view, already embedded
        else:
            face = decode_face(sighting.thumbnail)
            if not usable(face, recognizer.embedder):
                continue
            embedding = embed_stored(recognizer.embedder, [face])[0]
        if any(float(embedding @ other) >= too_similar for other, _, _ in chosen):
            continue
        chosen.append((embedding, sighting.thumbnail, sighting))
        if len(chosen) == MAX_TEMPLATES:
            break
    return [NewTemplate(e, recognizer.embedder.model_id, quality=float(s.quality), thumbnail=t, source=f"sighting {s.id}")
            for e, t, s in chosen]


def recluster_gallery(gallery, recognizer) -> str:
    """Cluster every unknown sighting of ``gallery`` again; returns a one-line summary."""
    config = VisitorConfig.from_card(recognizer.card.visitors)
    faces, owners, sighting_ids = gallery.unknown_faces(recognizer.embedder.model_id)
    if not len(faces):
        return "no unknown sightings to cluster"
    labels = recluster(faces, config.join, config.min_faces)
    by_sighting: dict[int, Counter] = {}
    for sid, label in zip(sighting_ids.tolist(), labels.tolist()):
        by_sighting.setdefault(sid, Counter())[label] += 1
    cluster_of = {sid: votes.most_common(1)[0][0] for sid, votes in by_sighting.items()}
    old_of = {}
    for sid, owner in zip(sighting_ids.tolist(), owners.tolist()):
        old_of[sid] = owner
    # Each cluster keeps the old visitor most of its sightings had (each old id once).
    votes = Counter((cluster, old_of[sid]) for sid, cluster in cluster_of.items() if cluster >= 0 and old_of[sid] > 0)
    keep: dict[int, int] = {}
    used: set[int] = set()
    for (cluster, old), _ in votes.most_common():
        if cluster not in keep and old not in used:
            keep[cluster], used = old, used | {old}
    clusters = sorted({c for c in cluster_of.values() if c >= 0})
    fresh = [c for c in clusters if c not in keep]
    new_ids = gallery.create_visitors(len(fresh)) if fresh else []
    keep.update(zip(fresh, new_ids))
    assignments = {sid: (keep[c] if c >= 0 else None) for sid, c in cluster_of.items()}
    gallery.set_visitors(assignments)
    noise = sum(1 for c in cluster_of.values() if c < 0)
    return (f"{len(cluster_of)} unknown sighting(s): {len(clusters)} visitor(s) ({len(fresh)} new), "
            f"{noise} left unclustered (join {config.join:.2f}, at least {config.min_faces} faces)")


def _negative(recognizer, sighting, wrong: str):
    """``(wrong, NewTemplate)``: the sighting's face as a "not them" template of ``wrong``,
    in the model in use (its stored embedding, else its crop embedded again), or None
    when a sighting of another model has no crop the model can use."""
    from faceapp.storage.reembed import decode_face, embed_stored, usable

    model_id = recognizer.embedder.model_id
    if sighting.model_id == model_id:
        embedding = sighting.embeddings[0]
    else:
        face = decode_face(sighting.thumbnail)
        if not usable(face, recognizer.embedder):
            logger.warning("sighting %s was recorded with model %r and has no crop %r can use: no 'not them' template",
                           sighting.id, sighting.model_id, model_id)
            return None
        embedding = embed_stored(recognizer.embedder, [face])[0]
    return wrong, NewTemplate(embedding, model_id, quality=sighting.quality, source="correction")


def give_sightings(gallery, recognizer, sightings: Sequence, name: str, *, wrong: str | None = None,
                   visitor: int | None = None) -> int:
    """"This is NAME": give ``sightings`` to ``name`` (enrolling them when new) with
    their crops that pass the quality gate; ``wrong``: the person they were given
    before, who gets a "not them" template; ``visitor``: forgotten once left without
    sightings. One transaction; returns how many templates were added."""
    from faceapp.errors import FaceAppError
    from faceapp.storage.records import name_key, normalize_name

    name = normalize_name(name)
    existing = {name_key(p.name): p.name for p in gallery.people()}
    name = existing.get(name_key(name), name)  # the enrolled spelling of the same name
    templates = templates_from_sightings(recognizer, sightings)
    new_person = name not in existing.values()
    if new_person and not templates:
        raise FaceAppError(f"none of these faces is good enough to enroll '{name}' (blurred, too small or turned away); "
                           "enroll them from photos instead")
    negative = None
    if wrong is not None and wrong != name:
        negative = _negative(recognizer, sightings[0], wrong)
    gallery.assign([s.id for s in sightings], name, templates, negative=negative, new_person=new_person, forget_visitor=visitor)
    return len(templates)


def name_visitor(gallery, recognizer, visitor: int, name: str) -> int:
    """Enroll unknown visitor ``visitor`` as ``name`` from their best crops and give them
    every sighting of the visitor; returns the templates added."""
    gallery.visitor(visitor)  # a one-line error when there is no such visitor
    return give_sightings(gallery, recognizer, gallery.sightings(visitor=visitor), name, visitor=visitor)
