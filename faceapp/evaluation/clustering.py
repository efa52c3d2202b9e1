"""How well unknown faces are clustered into visitors: BCubed precision, recall and F,
and the number of clusters against the true number of people.

BCubed (Bagga and Baldwin, 1998): for each face, precision is the share of its cluster
that is the same person, recall the share of its person that is in its cluster; both are
averaged over faces and F is their harmonic mean. A face left alone is a cluster of one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def bcubed(truth: ArrayLike, predicted: ArrayLike) -> tuple[float, float, float]:
    """(precision, recall, F) of ``predicted`` cluster labels against ``truth`` (``(N,)``)."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if truth.shape != predicted.shape or truth.ndim != 1 or not len(truth):
        raise ValueError(f"labels must be two equal, non-empty 1-D arrays, got {truth.shape} and {predicted.shape}")
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(predicted, return_inverse=True)
    joint = np.zeros((t.max() + 1, p.max() + 1), np.int64)
    np.add.at(joint, (t, p), 1)
    same = joint[t, p].astype(np.float64)  # faces sharing both my person and my cluster (me included)
    precision = float(np.mean(same / joint.sum(axis=0)[p]))
    recall = float(np.mean(same / joint.sum(axis=1)[t]))
    return precision, recall, 2 * precision * recall / (precision + recall)


def clustering_report(truth: ArrayLike, predicted: ArrayLike) -> dict:
    """BCubed figures plus clusters found (and those of 2 faces or more) vs people."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    precision, recall, f = bcubed(truth, predicted)
    _, sizes = np.unique(predicted, return_counts=True)
    return {"faces": len(truth), "people": len(np.unique(truth)), "clusters": len(sizes),
            "clusters_of_2_or_more": int((sizes >= 2).sum()), "singletons": int((sizes == 1).sum()),
            "precision": round(precision, 4), "recall": round(recall, 4), "f": round(f, 4)}


def run_unknowns(recognizer, data_dir, *, min_photos: int = 4, config=None, seed: int = 0, progress: bool = False) -> dict:
    """Cluster the faces of every person with at least ``min_photos`` photos of a dataset
    (in a random order, as unknown faces arriving one by one), by the live rule and by
    DBSCAN (``faceapp unknowns recluster``); the figures of each."""
    from faceapp.evaluation.ident import discover_people
    from faceapp.evaluation.images import DatasetError, embed_images
    from faceapp.recognition.visitors import VisitorConfig, cluster_incrementally, recluster
    from faceapp.vision.faces import FacePolicy

    config = config or VisitorConfig.from_card(recognizer.card.visitors)
    people = {name: paths for name, paths in discover_people(data_dir).items() if len(paths) >= min_photos}
    if len(people) < 2:
        raise DatasetError(f"{data_dir}: fewer than 2 people have {min_photos} photos or more")
    paths = [p for ps in people.values() for p in ps]
    names = np.array([name for name, ps in people.items() for _ in ps])
    embedded = embed_images(recognizer, paths, FacePolicy(no_face="skip"), flip=False, progress=progress, description="faces")
    faces, truth = embedded.plain[embedded.usable], names[embedded.usable]
    order = np.random.default_rng(seed).permutation(len(faces))
    faces, truth = faces[order], truth[order]
    live = cluster_incrementally(faces, config)
    offline = recluster(faces, config.join, config.min_faces)
    offline = np.where(offline < 0, offline.max(initial=0) + 1 + np.arange(len(offline)), offline)  # noise: alone
    return {"dataset": str(data_dir), "min_photos": min_photos, "join": config.join, "min_faces": config.min_faces,
            "seed": seed, "live": clustering_report(truth, live), "dbscan": clustering_report(truth, offline)}


def format_unknowns(report: dict) -> str:
    lines = [(f"{report['live']['faces']} faces of {report['live']['people']} people with {report['min_photos']}+ photos "
             f"(join {report['join']:.2f}, new visitors from {report['min_faces']} close faces)")]
    for key, title in (("live", "live (one face at a time)"), ("dbscan", "DBSCAN (unknowns recluster)")):
        r = report[key]
        lines.append(f"  {title:<28} BCubed precision {r['precision']:.4f}  recall {r['recall']:.4f}  F {r['f']:.4f}  "
                     f"clusters of 2+: {r['clusters_of_2_or_more']} (people: {r['people']}), faces alone: {r['singletons']}")
    return "\n".join(lines)
