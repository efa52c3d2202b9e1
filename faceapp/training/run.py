"""One training run end to end: load faces, split by person, train, export, report."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from faceapp.training.config import DataConfig, TrainConfig
from faceapp.training.data import LoadedFaces, load_faces, split_people
from faceapp.training.loop import TrainResult, train

logger = logging.getLogger(__name__)


def train_on_split(loaded: LoadedFaces, train_names, val_names, config: TrainConfig, out_dir: str | os.PathLike, *,
                   seed: int = 0, model_dir=None, checkpoint_dir=None, resume: bool = False, restore_dir=None, callbacks: tuple = ()) -> TrainResult:
    """Train on ``train_names``' faces and validate on ``val_names``' (disjoint)."""
    return train(loaded.faces.subset(train_names), loaded.faces.subset(val_names), config, out_dir, seed=seed, model_dir=model_dir,
                 checkpoint_dir=checkpoint_dir, resume=resume, restore_dir=restore_dir, callbacks=callbacks)


def data_summary(data: DataConfig, loaded: LoadedFaces, train_names, val_names) -> dict[str, Any]:
    """The card's description of the training data (counts, not the people's names)."""
    train_faces = loaded.faces.subset(train_names)
    val_faces = loaded.faces.subset(val_names)
    return {
        "dataset": str(data.data_dir),
        "people_filter": None if data.people is None else f"{len(data.people)} named people",
        **loaded.summary(),
        "train": {"people": len(train_names), "images": len(train_faces)},
        "validation": {"people": len(val_names), "images": len(val_faces)},
        "split": f"by person, val_fraction={data.val_fraction}, seed={data.seed}",
        "no_face_policy": data.no_face,
    }


def write_people(out_dir: Path, train_names, val_names, loaded: LoadedFaces) -> None:
    """``people.json`` (who trained, who validated) and ``no_face.txt`` (images without a
    detected face) next to the model."""
    (out_dir / "people.json").write_text(
        json.dumps({"train": list(train_names), "validation": list(val_names), "dropped": list(loaded.dropped_people)}, indent=1) + "\n",
        encoding="utf-8",
    )
    (out_dir / "no_face.txt").write_text("".join(f"{path}\n" for path in loaded.no_face), encoding="utf-8")


def training_record(data: DataConfig, config: TrainConfig, loaded: LoadedFaces, train_names, val_names,
                    result: TrainResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``training`` section of the card and the report printed by the CLI."""
    return {
        "data": data_summary(data, loaded, train_names, val_names),
        "config": config.to_json(),
        "validation": {
            "pairs": len(result.best.scores),
            "before": result.before.to_json(),
            "after": result.best.to_json(),
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history.get("loss", [])),
            "resumed_from_epoch": result.resumed_from_epoch,
        },
        "device": result.device,
        "images_per_second": round(result.images_per_second, 1),
        "seconds": round(result.seconds, 1),
        **(extra or {}),
    }


def distributed_record(current, result: TrainResult) -> dict[str, Any]:
    """The report's ``distributed`` section of a multi-worker run (empty otherwise): the
    SHA-256 of the exported (best epoch's) weights and of the last epoch's, the same on
    every worker of a synchronous run."""
    if not current.multi_worker:
        return {}
    from faceapp.training.distributed import weights_digest

    return {"distributed": {"workers": current.workers, "worker_index": current.index, "chief": current.is_chief,
                            "weights_sha256": weights_digest(result.backbone),
                            "last_epoch_weights_sha256": result.last_epoch_weights_sha256}}


def train_and_export(data: DataConfig, config: TrainConfig, out_dir: str | os.PathLike, *, model_dir=None,
                     progress: bool = False, loaded: LoadedFaces | None = None, resume: bool = False) -> dict[str, Any]:
    """``faceapp train`` without ``--folds``/``--search``: returns the report (JSON-ready).

    A checkpoint is written to ``out_dir/checkpoints/`` after every epoch; ``resume``
    continues from the newest one (see :mod:`faceapp.training.checkpoints`). In a
    multi-worker run (``TF_CONFIG``) only the chief writes to ``out_dir``; the other
    workers write to a temporary folder, removed at the end (:mod:`faceapp.training.distributed`).
    The run report (``report.png``, ``report.json``: :mod:`faceapp.training.report`) is
    written next to the model and listed in ``outputs``."""
    from faceapp.training import distributed
    from faceapp.training.export import calibrate_thresholds, export_model
    from faceapp.training.report import write_report

    data.validate()
    config.validate()
    out = Path(out_dir)
    loaded = loaded or load_faces(data, model_dir=model_dir, progress=progress)
    train_names, val_names = split_people(loaded.faces.names, data.val_fraction, data.seed)
    current = distributed.cluster()
    write = distributed.write_dir(out, current)
    try:
        result = train_on_split(loaded, train_names, val_names, config, write / "run", seed=data.seed, model_dir=model_dir,
                                checkpoint_dir=write / "checkpoints", resume=resume,
                                restore_dir=None if current.is_chief else out / "checkpoints")
        record = training_record(data, config, loaded, train_names, val_names, result, distributed_record(current, result))
        thresholds = calibrate_thresholds(result.best.scores, result.best.same)
        card = export_model(result.backbone, write, thresholds=thresholds, training=record)
        write_people(write, train_names, val_names, loaded)
        report_files = write_report(result, loaded.faces.subset(val_names), write, seed=data.seed)
    finally:
        distributed.cleanup(write, current)
    return {"model_id": card.model_id, "model_dir": str(out), "thresholds": thresholds, **record,
            "outputs": {**result.outputs, **report_files}}


def with_overrides(config: TrainConfig, **changes) -> TrainConfig:
    """``config`` with some fields changed, validated."""
    changed = replace(config, **changes)
    changed.validate()
    return changed


def train_from_shards_and_export(shards_dir: str | os.PathLike, data: DataConfig, config: TrainConfig, out_dir: str | os.PathLike, *,
                                 model_dir=None, resume: bool = False) -> dict[str, Any]:
    """``faceapp train --from-shards DIR --out MODEL_DIR``: split the shard folder's people
    (``data.val_fraction``, ``data.seed``, ``data.min_images``), train streaming from the
    shards, export; returns the report (JSON-ready), as :func:`train_and_export`."""
    from faceapp.training import distributed
    from faceapp.training.from_shards import split_shards

    config.validate()
    out = Path(out_dir)
    train_set, val_faces, counts = split_shards(shards_dir, data.val_fraction, data.seed, data.min_images)
    current = distributed.cluster()
    write = distributed.write_dir(out, current)
    try:
        return _train_from_shards(shards_dir, data, config, out, write, current, train_set, val_faces, counts, model_dir, resume)
    finally:
        distributed.cleanup(write, current)


def _train_from_shards(shards_dir, data, config, out, write, current, train_set, val_faces, counts, model_dir, resume):
    from faceapp.training.export import calibrate_thresholds, export_model
    from faceapp.training.report import write_report
    from faceapp.training.shards import read_manifest

    result = train(train_set, val_faces, config, write / "run", seed=data.seed, model_dir=model_dir,
                   checkpoint_dir=write / "checkpoints", resume=resume,
                   restore_dir=None if current.is_chief else out / "checkpoints")
    manifest = read_manifest(shards_dir)
    kept = [count for count in counts.values() if count >= data.min_images]
    summary = {
        "dataset": manifest.get("data_dir"), "shards": str(shards_dir), "people_filter": None,
        "people": len(kept), "images": int(sum(kept)),
        "dropped_people": len(counts) - len(kept),
        "train": {"people": len(train_set.names), "images": len(train_set)},
        "validation": {"people": len(val_faces.names), "images": len(val_faces)},
        "split": f"by person, val_fraction={data.val_fraction}, seed={data.seed}",
    }
    record = {
        "data": summary,
        "config": config.to_json(),
        "validation": {"pairs": len(result.best.scores), "before": result.before.to_json(), "after": result.best.to_json(),
                       "best_epoch": result.best_epoch, "epochs_run": len(result.history.get("loss", [])),
                       "resumed_from_epoch": result.resumed_from_epoch},
        "device": result.device,
        "images_per_second": round(result.images_per_second, 1),
        "seconds": round(result.seconds, 1),
        **distributed_record(current, result),
    }
    thresholds = calibrate_thresholds(result.best.scores, result.best.same)
    card = export_model(result.backbone, write, thresholds=thresholds, training=record)
    dropped = [name for name, count in counts.items() if count < data.min_images]
    (write / "people.json").write_text(json.dumps({"train": list(train_set.names), "validation": list(val_faces.names),
                                                 "dropped": dropped}, indent=1) + "\n", encoding="utf-8")
    report_files = write_report(result, val_faces, write, seed=data.seed)
    return {"model_id": card.model_id, "model_dir": str(out), "thresholds": thresholds, **record,
            "outputs": {**result.outputs, **report_files}}
