"""``faceapp eval lfw``: LFW's 10-fold verification protocol run through the whole pipeline.

Every image that ``pairs.txt`` names is read once, its face found by YuNet, aligned to the
ArcFace template and embedded by SFace in batches (and, with flip fusion, its mirror
image too); a pair's score is the cosine similarity of its two embeddings. The report
gives the k-fold accuracy (each fold's threshold chosen on the other folds), ROC AUC,
EER, TAR at FAR 1e-2 and 1e-3 and the best single threshold, for plain embeddings and
for flip-fused ones, and proposes threshold presets from them.

How a face is found in a dataset image is a :class:`~faceapp.vision.faces.FacePolicy`
(by default: YuNet at 1x and 2x, the face nearest the centre, LFW's mean landmarks when
no face is found). Fallbacks are counted and named in the report, never silent.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.evaluation.images import DatasetError, ImageEmbeddings, embed_images
from faceapp.evaluation.lfw_pairs import Pair, pair_arrays, read_pairs
from faceapp.evaluation.report import plot_verification_roc, write_pair_scores, write_report
from faceapp.evaluation.verification import pair_scores, verification_result
from faceapp.vision.faces import FacePolicy

logger = logging.getLogger(__name__)

__all__ = ["LfwDataset", "default_lfw_dir", "load_lfw", "run_lfw"]


def default_lfw_dir() -> Path:
    """``$FACEAPP_LFW_DIR``, else ``<repository>/../shared/data/lfw``."""
    from faceapp.paths import lfw_dir

    return lfw_dir()


# --------------------------------------------------------------------------- verification
@dataclass(frozen=True)
class LfwDataset:
    """A checked LFW-layout dataset: ``directory/images/NAME_NNNN.jpg`` and a pairs file.

    Attributes:
        directory, pairs_file, images_dir: where it is.
        pairs: the pairs, in file order.
        names: the distinct image file names the pairs use, sorted (each embedded once).
    """

    directory: Path
    pairs_file: Path
    images_dir: Path
    pairs: tuple[Pair, ...]
    names: tuple[str, ...]

    def pair_indices(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows of each pair's left and right image in :attr:`names`: two int ``(n,)``."""
        index = {name: row for row, name in enumerate(self.names)}
        return (
            np.array([index[p.left] for p in self.pairs], np.int64),
            np.array([index[p.right] for p in self.pairs], np.int64),
        )


def load_lfw(data_dir: str | os.PathLike | None = None, pairs_file: str | os.PathLike | None = None) -> LfwDataset:
    """Check and read an LFW-layout dataset (default :func:`default_lfw_dir`; the pairs
    file defaults to ``DATA_DIR/pairs.txt``). Raises DatasetError naming what is wrong,
    including images that the pairs name but that are missing."""
    directory = Path(data_dir).expanduser() if data_dir is not None else default_lfw_dir()
    pairs_path = Path(pairs_file).expanduser() if pairs_file is not None else directory / "pairs.txt"
    images_dir = directory / "images"
    if not directory.is_dir():
        raise DatasetError(f"LFW folder not found: {directory} (give DATA_DIR or set FACEAPP_LFW_DIR)")
    if not pairs_path.is_file():
        raise DatasetError(f"pairs file {'is not a regular file' if pairs_path.exists() else 'not found'}: {pairs_path}")
    if not images_dir.is_dir():
        raise DatasetError(f"images folder not found: {images_dir} (expected DATA_DIR/images/NAME_NNNN.jpg)")
    try:
        pairs = read_pairs(pairs_path)
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read {pairs_path}: {error}") from None
    except ValueError as error:
        raise DatasetError(str(error)) from None
    names = sorted({name for pair in pairs for name in (pair.left, pair.right)})
    missing = [name for name in names if not (images_dir / name).is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} image(s) named in {pairs_path} are missing from {images_dir}, e.g. {missing[0]}")
    return LfwDataset(directory, pairs_path, images_dir, tuple(pairs), tuple(names))


def lfw_embeddings(recognizer: Any, dataset: LfwDataset, policy: FacePolicy, *, flip: bool = True,
                   batch_size: int = 64, progress: bool = False) -> ImageEmbeddings:
    """Every image the pairs use (``dataset.names``, in order), embedded once."""
    return embed_images(recognizer, [dataset.images_dir / name for name in dataset.names], policy,
                        flip=flip, batch_size=batch_size, progress=progress, description="LFW images")


def run_lfw(
    recognizer: Any,
    dataset: LfwDataset | None = None,
    *,
    out_dir: str | os.PathLike | None = "eval-lfw",
    policy: FacePolicy | None = None,
    flip: bool = True,
    batch_size: int = 64,
    progress: bool = False,
    embeddings: ImageEmbeddings | None = None,
) -> dict[str, Any]:
    """Run the LFW pairs protocol and return the report (a JSON-ready dict).

    ``dataset`` from :func:`load_lfw` (default: ``load_lfw()``). With ``out_dir``, writes
    ``report.json`` and ``roc.png`` there. ``flip`` adds the flip-fused results (two
    network passes per face). ``recognizer`` is a :class:`~faceapp.recognition.pipeline.Recognizer`;
    its threshold is reported as the app's. ``embeddings``: the dataset's images
    (``dataset.names``, in order) already embedded by :func:`lfw_embeddings` with this
    ``policy`` and ``flip``, for a caller that uses them for more than the pairs.
    """
    policy = policy or FacePolicy()
    try:
        policy.validate()
    except ValueError as error:
        raise DatasetError(str(error)) from None
    if policy.no_face == "skip":
        raise DatasetError("LFW pairs cannot skip images: use the 'centre' or 'reject' no-face policy")
    dataset = dataset or load_lfw()
    pairs, names = dataset.pairs, dataset.names
    left, right = dataset.pair_indices()
    labels, folds = pair_arrays(list(pairs))
    if len(np.unique(folds)) < 2:
        raise DatasetError(f"the pairs file has {len(np.unique(folds))} fold(s): k-fold evaluation needs 2 or more "
                           "(each fold's threshold is chosen on the others)")

    if embeddings is None:
        embeddings = lfw_embeddings(recognizer, dataset, policy, flip=flip, batch_size=batch_size, progress=progress)
    elif len(embeddings.paths) != len(names):
        raise ValueError(f"embeddings of {len(embeddings.paths)} images given for the {len(names)} of the pairs")
    threshold = float(recognizer.verification_threshold)  # 1:1 pairs: the card's preset value
    scores = {"plain": pair_scores(embeddings.plain, left, right, embeddings.usable)}
    if embeddings.flip is not None:
        scores["flip"] = pair_scores(embeddings.flip, left, right, embeddings.usable)
    results = {mode: verification_result(values, labels, folds, threshold) for mode, values in scores.items()}
    best = max(results, key=lambda mode: (results[mode].kfold.mean, mode == "plain"))
    no_face = [p.name for p in embeddings.no_face()]
    report: dict[str, Any] = {
        "protocol": "LFW verification, k-fold: each fold's threshold chosen on the other folds",
        "dataset": {
            "directory": str(dataset.directory),
            "pairs_file": str(dataset.pairs_file),
            "pairs": len(pairs),
            "same_person_pairs": int(labels.sum()),
            "folds": len(np.unique(folds)),
            "images": len(names),
        },
        "model": {
            "model_id": recognizer.embedder.model_id,
            "device": recognizer.embedder.device_name,
            "detector_score_threshold": recognizer.detector.config.score_threshold,
        },
        "face_policy": policy.to_json(),
        "faces": {
            "images": len(names),
            "detected": int(embeddings.detected.sum()),
            "no_face": len(no_face),
            "no_face_policy": policy.no_face,
            "no_face_images": no_face,
            "multiple_faces": embeddings.multiple,
        },
        "results": {mode: result.to_json() for mode, result in results.items()},
        "best_mode": best,
        "seconds": round(embeddings.seconds, 1),
    }
    if out_dir is not None:
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
            roc_path = plot_verification_roc(
                {("flip fusion" if mode == "flip" else "plain"): result for mode, result in results.items()},
                out / "roc.png", title=f"LFW ROC ({len(pairs)} pairs, {recognizer.embedder.model_id})",
            )
            scores_path = write_pair_scores(out / "pair_scores.csv", pairs, scores)
            report["outputs"] = {"report": str(out / "report.json"), "roc": str(roc_path), "scores": str(scores_path)}
            write_report(out / "report.json", report)
        except OSError as error:
            raise DatasetError(f"cannot write the report to {out}: {error.strerror or error}") from None
    return report


