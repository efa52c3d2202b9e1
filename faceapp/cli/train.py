"""``faceapp train``: fine-tune or train the embedding network (:mod:`faceapp.training`).

User errors raise :class:`~faceapp.errors.FaceAppError` (one line, no traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from faceapp.cli.argtypes import fold_count, fraction, positive_int, seed
from faceapp.cli.common import check_output_folder, pipeline_config, print_report, show_progress
from faceapp.errors import FaceAppError
from faceapp.files import check_input_file

logger = logging.getLogger(__name__)

TRAIN_DESCRIPTION = """\
Fine-tune the SFace embedding network on DATA_DIR (one folder of photos per person, or
flat NAME_NNNN.jpg files as in LFW's images/), or train it from scratch, and write a
model directory usable with --model. Faces are found and aligned once with the app's
own detector and cached; images without a face are listed in MODEL_DIR/no_face.txt.
People (never images) are split into training and validation (--val-fraction); after
every epoch the verification accuracy and AUC on pairs of validation people are shown,
training stops early when the AUC stops improving, and the best epoch is exported with
thresholds calibrated on the validation pairs. A checkpoint (weights, head, optimizer,
epoch, history) is written to MODEL_DIR/checkpoints/ after every epoch; after an
interruption, the same command with --resume continues from the last complete one
(also with --folds, keeping the finished folds, and --search, counting this run's trials).
--folds K: K-fold cross-validation by person instead (no model is written, the table is
saved to MODEL_DIR/crossval.json). --search N: N more trials of an optuna study over learning
rate, margin and frozen depth, pruned on the per-epoch validation AUC (in MODEL_DIR/search/study.db
or --study-storage URL; table in MODEL_DIR/search/search.csv); the best trial run here is exported.
--shards DIR instead of --out: only find and align the faces, into TFRecord shards of
--images-per-shard images in DIR (for datasets too large for memory); an interrupted run
resumes where it stopped when the same command is run again; skipped images and why are
listed in DIR/manifest.json. --from-shards DIR --out MODEL_DIR (no DATA_DIR) trains from
such a folder, streaming the training people's crops from the shards. Several GPUs of one
machine are used together (MirroredStrategy); --workers host:port,... --worker-index N (or
TF_CONFIG) trains on several machines, each running the same command on the same data."""


class TrainingError(FaceAppError):
    """Bad training options or a failed training run."""


def _read_people_file(path: str) -> tuple[str, ...]:
    try:
        lines = check_input_file(path, "people list").read_text(encoding="utf-8").splitlines()
    except FaceAppError as error:
        raise TrainingError(f"cannot read the people list: {error}") from None
    except UnicodeDecodeError:
        raise TrainingError(f"cannot read the people list {path}: not UTF-8 text") from None
    except OSError as error:
        raise TrainingError(f"cannot read the people list {path}: {error.strerror or error}") from None
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _people_filter(args) -> tuple[str, ...] | None:
    from faceapp.training.data import parse_folds, people_from_pairs

    people = None
    if args.people_from_pairs:
        try:
            folds = parse_folds(args.folds_of_pairs) if args.folds_of_pairs else tuple(range(1, 11))
        except ValueError as error:
            raise TrainingError(str(error)) from None
        people = set(people_from_pairs(args.people_from_pairs, folds))
    elif args.folds_of_pairs:
        raise TrainingError("--folds-of-pairs needs --people-from-pairs")
    if args.people:
        listed = set(_read_people_file(args.people))
        people = listed if people is None else people & listed
    if args.exclude_folds and not args.exclude_people_from_pairs:
        raise TrainingError("--exclude-folds needs --exclude-people-from-pairs")
    if args.exclude_people_from_pairs:
        from faceapp.training.data import parse_folds as parse

        excluded = set(people_from_pairs(args.exclude_people_from_pairs, parse(args.exclude_folds or "1-10")))
        if people is None:
            from faceapp.evaluation.ident import discover_people

            people = set(discover_people(args.data_dir))
        people -= excluded
    return None if people is None else tuple(sorted(people))


def configs_from_args(args) -> tuple[Any, Any]:
    """``(DataConfig, TrainConfig)`` from the parsed options (TrainingError if invalid)."""
    from faceapp.training.config import AugmentConfig, DataConfig, TrainConfig

    from_shards = getattr(args, "from_shards", None)
    if from_shards and args.data_dir:
        raise TrainingError("give either DATA_DIR or --from-shards DIR, not both")
    if not (from_shards or args.data_dir):
        raise TrainingError("DATA_DIR is required (or --from-shards DIR with --out)")
    if from_shards:
        chosen_when_written = [option for option, value in (
            ("--people", args.people), ("--people-from-pairs", args.people_from_pairs),
            ("--exclude-people-from-pairs", args.exclude_people_from_pairs), ("--max-images", args.max_images),
            ("--max-people", args.max_people), ("--no-face", args.no_face != "skip"), ("--cache-dir", args.cache_dir),
            ("--images-per-shard", args.images_per_shard != 1024), ("--shard-encoding", args.shard_encoding != "jpeg"),
            ("--multiple-faces", args.multiple_faces != "pick")) if value]
        if chosen_when_written:
            raise TrainingError(f"{', '.join(chosen_when_written)}: the faces of a shard folder are chosen when it is written "
                                "(faceapp train DATA_DIR --shards DIR ...); with --from-shards only --min-images, "
                                "--val-fraction and --seed choose among them")
    data = DataConfig(
        data_dir=Path(args.data_dir or from_shards),
        people=_people_filter(args),
        min_images=args.min_images,
        max_images_per_person=args.max_images,
        max_people=args.max_people,
        val_fraction=args.val_fraction,
        seed=args.seed,
        no_face=args.no_face,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
    )
    train = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup,
        head=args.head,
        margin=args.margin,
        scale=args.scale,
        freeze=args.freeze,
        from_scratch=args.from_scratch,
        balance=args.balance,
        patience=args.patience,
        dropout=args.dropout,
        precision=args.precision,
        val_pairs=args.val_pairs,
        steps_per_epoch=args.steps_per_epoch,
        augment=AugmentConfig(enabled=args.augment),
        verbose=0 if args.quiet else (1 if sys.stderr.isatty() else 2),
    )
    try:
        data.validate()
        train.validate()
    except ValueError as error:
        raise TrainingError(str(error)) from None
    return data, train


def cmd_prepare_shards(args, data) -> int:
    """``faceapp train DATA_DIR --shards DIR``: align into (or resume) a shard folder."""
    from faceapp.training.shards import ShardConfig, prepare_shards

    shards = check_output_folder(args.shards, "shards")
    shard_config = ShardConfig(images_per_shard=args.images_per_shard, encoding=args.shard_encoding,
                               multiple_faces=args.multiple_faces)
    report = prepare_shards(data, shards, shard_config=shard_config, model_dir=args.model,
                            detection=pipeline_config(args), progress=show_progress(args))
    skipped = ", ".join(f"{count} {kind}" for kind, count in report.skipped.items()) or "none"
    print_report(args, report.summary(),
                 f"{report.images} faces in {report.shards} shards in {shards} ({len(report.written)} written, "
                 f"{len(report.reused)} kept from an earlier run); skipped: {skipped} (see {shards / 'manifest.json'})")
    return 0


def cmd_train_from_shards(args, data, config) -> int:
    """``faceapp train --from-shards DIR --out MODEL_DIR``: train streaming from shards."""
    from faceapp.training.checkpoints import CheckpointError
    from faceapp.training.run import train_from_shards_and_export

    if args.folds or args.search:
        raise TrainingError("--folds and --search need DATA_DIR; --from-shards trains one model")
    out = check_output_folder(args.out, "model")
    try:
        report = train_from_shards_and_export(args.from_shards, data, config, out, model_dir=args.model, resume=args.resume)
    except CheckpointError as error:
        raise TrainingError(str(error)) from None
    print_report(args, report, format_train_report(report))
    return 0


def cmd_train(args) -> int:
    """``faceapp train``: see :data:`TRAIN_DESCRIPTION`."""
    from faceapp.training import distributed

    if getattr(args, "workers", None):
        distributed.configure_workers(args.workers, args.worker_index)
    elif getattr(args, "worker_index", None) is not None:
        raise TrainingError("--worker-index needs --workers host:port,host:port,...")
    current = distributed.cluster()
    if current.multi_worker and not args.shards:
        import contextlib

        from faceapp.accel.device import nvidia_driver_present
        from faceapp.stdio import native_stderr_silenced

        # Not import_tensorflow(): it starts the runtime, and the strategy must come first.
        with contextlib.nullcontext() if nvidia_driver_present() else native_stderr_silenced():
            import tensorflow as tf
        if args.device == "cpu":
            tf.config.set_visible_devices([], "GPU")
        distributed.strategy()  # before any other TensorFlow operation (face detection included)
    elif args.device == "cpu":
        from faceapp.accel.device import import_tensorflow

        import_tensorflow().config.set_visible_devices([], "GPU")
    data, config = configs_from_args(args)
    if args.shards:
        if args.from_shards:
            raise TrainingError("--shards writes shards and --from-shards reads them: give one")
        if args.folds or args.search or args.resume:
            raise TrainingError("--shards only prepares the shards; --folds, --search and --resume need --out")
        if current.multi_worker:  # every worker would write the same folder
            raise TrainingError("--shards prepares the shards on one machine; leave out --workers (and TF_CONFIG)")
        return cmd_prepare_shards(args, data)
    if current.multi_worker:
        if args.folds or args.search:
            raise TrainingError("--folds and --search run on one machine; leave out --workers (and TF_CONFIG)")
        if config.batch_size % current.workers:
            raise TrainingError(f"--batch-size {config.batch_size} is global: it must be a multiple of the {current.workers} workers")
    if (getattr(args, "study_storage", None) or getattr(args, "study_name", None)) and not args.search:
        raise TrainingError("--study-storage and --study-name need --search N")
    if args.from_shards:
        return cmd_train_from_shards(args, data, config)
    if args.folds and args.search:
        raise TrainingError("--folds and --search cannot be combined")
    out = check_output_folder(args.out, "model")
    from faceapp.training.data import load_faces, split_people

    loaded = load_faces(data, model_dir=args.model, progress=show_progress(args), detection=pipeline_config(args))
    if loaded.no_face:
        print(f"{len(loaded.no_face)} image(s) without a detected face ({'centre-aligned' if data.no_face == 'centre' else 'left out'}), "
              f"e.g. {loaded.no_face[0]}; all listed in {out / 'no_face.txt'}", file=sys.stderr)
    if args.folds:
        from faceapp.training.checkpoints import CheckpointError
        from faceapp.training.folds import cross_validate, format_crossval

        try:
            report = cross_validate(loaded, config, args.folds, out, seed=data.seed, model_dir=args.model, resume=args.resume)
        except (ValueError, CheckpointError) as error:
            raise TrainingError(str(error)) from None
        (out / "no_face.txt").write_text("".join(f"{p}\n" for p in loaded.no_face), encoding="utf-8")
        print_report(args, report, format_crossval(report))
        return 0
    if args.search:
        from faceapp.training.checkpoints import CheckpointError
        from faceapp.training.export import calibrate_thresholds, export_model
        from faceapp.training.run import training_record, write_people
        from faceapp.training.search import format_search, run_search

        train_names, val_names = split_people(loaded.faces.names, data.val_fraction, data.seed)
        try:
            search = run_search(loaded, train_names, val_names, config, args.search, out / "search", seed=data.seed,
                                model_dir=args.model, storage=getattr(args, "study_storage", None), study_name=getattr(args, "study_name", None),
                                resume=args.resume)
        except (ValueError, CheckpointError) as error:  # SearchError included: optuna missing, bad storage, another study's settings
            raise TrainingError(str(error)) from None
        result = search.result
        record = training_record(data, search.config, loaded, train_names, val_names, result,
                                 {"search": search.rows, "study": {k: v for k, v in search.to_json().items() if k != "trials"}})
        thresholds = calibrate_thresholds(result.best.scores, result.best.same)
        card = export_model(result.backbone, out, thresholds=thresholds, training=record)
        write_people(out, train_names, val_names, loaded)
        importance = f"; parameter importances in {search.importance_plot}" if search.importance_plot else ""
        print_report(args, {"model_id": card.model_id, "model_dir": str(out), **record},
                     format_search(search.rows) + f"\nbest trial run here ({search.trial}) exported to {out} as model "
                     f"{card.model_id}; study {search.study_name!r}{importance}")
        return 0
    from faceapp.training.checkpoints import CheckpointError
    from faceapp.training.run import train_and_export

    try:
        report = train_and_export(data, config, out, model_dir=args.model, progress=show_progress(args), loaded=loaded,
                                  resume=args.resume)
    except CheckpointError as error:
        raise TrainingError(str(error)) from None
    print_report(args, report, format_train_report(report))
    return 0


def format_train_report(report: dict[str, Any]) -> str:
    validation = report["validation"]
    before, after = validation["before"], validation["after"]
    data = report["data"]
    return "\n".join([
        f"model {report['model_id']} written to {report['model_dir']}",
        (f"trained on {data['train']['people']} people ({data['train']['images']} images), "
        f"validated on {data['validation']['people']} people ({validation['pairs']} pairs)"),
        (f"validation accuracy {before['accuracy']:.4f} -> {after['accuracy']:.4f}, "
        f"AUC {before['auc']:.4f} -> {after['auc']:.4f} (best epoch {validation['best_epoch']} of {validation['epochs_run']}"
        f"{'; no epoch beat the starting model, which is exported unchanged' if validation['best_epoch'] == 0 else ''})"),
        "thresholds: " + ", ".join(f"{k} {v:.3f}" for k, v in report["thresholds"].items()),
        f"{report['images_per_second']:.1f} images/s on {report['device']}; history plot {report['outputs']['history_plot']}",
        *([f"run report (ROC, identification): {report['outputs']['report_plot']} and {report['outputs']['report']}"]
          if "report_plot" in report["outputs"] else []),
    ])


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``train`` to the CLI's subparsers ``commands`` (parsers take ``parents=[common]``)."""
    from faceapp.training.config import BALANCES, HEADS, NO_FACE, OPTIMIZERS, PRECISIONS, STAGES

    train = commands.add_parser("train", parents=[common], help="fine-tune or train the face-embedding network",
                                description=TRAIN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("data_dir", metavar="DATA_DIR", nargs="?", help="NAME/*.jpg folders, or NAME_NNNN.jpg files (in DATA_DIR or DATA_DIR/images)")
    where = train.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="MODEL_DIR", help="where the model (weights + card) and reports go")
    where.add_argument("--shards", metavar="DIR", help="instead of training: align the faces into TFRecord shards in DIR (resumable)")
    group = train.add_argument_group("shards (--shards writes them, --from-shards trains from them)")
    group.add_argument("--images-per-shard", type=positive_int, default=1024, metavar="N", help="input images per shard (default: 1024)")
    group.add_argument("--shard-encoding", choices=("jpeg", "png"), default="jpeg",
                       help="crops as JPEG quality 95 (about 4x smaller) or lossless PNG (default: jpeg)")
    group.add_argument("--multiple-faces", choices=("pick", "skip"), default="pick",
                       help="an image with several faces: pick the one nearest the centre, as training does, or skip it (default: pick)")
    group.add_argument("--from-shards", metavar="DIR",
                       help="with --out instead of DATA_DIR: train from a shard folder written by --shards "
                            "(people split by person; --val-fraction, --seed and --min-images apply)")
    group = train.add_argument_group("data")
    group.add_argument("--people", metavar="FILE", help="train only on the people listed in FILE (one name a line)")
    group.add_argument("--people-from-pairs", metavar="PAIRS", help="only people named in this LFW pairs.txt ...")
    group.add_argument("--folds-of-pairs", metavar="SPEC", help="... in these of its folds, e.g. 1-8")
    group.add_argument("--exclude-people-from-pairs", metavar="PAIRS", help="leave out the people of this pairs.txt ...")
    group.add_argument("--exclude-folds", metavar="SPEC", help="... in these of its folds (default: all), e.g. 9-10")
    group.add_argument("--min-images", type=positive_int, default=2, metavar="N", help="people with fewer usable faces are left out (default: 2)")
    group.add_argument("--max-images", type=positive_int, metavar="N", help="at most N images per person")
    group.add_argument("--max-people", type=positive_int, metavar="N", help="at most N people (first in name order)")
    group.add_argument("--val-fraction", type=fraction, default=0.2, metavar="F", help="share of the people held out for validation (default: 0.2)")
    group.add_argument("--no-face", choices=NO_FACE, default="skip", help="image without a detected face: skip it or align it at the image centre (default: skip; both are listed)")
    group.add_argument("--cache-dir", metavar="DIR", help="where aligned faces are cached (default: the user cache)")
    group.add_argument("--seed", type=seed, default=0, help="seeds the split, the pairs and the augmentation (default: 0)")
    group = train.add_argument_group("model and optimisation")
    group.add_argument("--epochs", type=positive_int, default=10)
    group.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="global batch size (default: 64)")
    group.add_argument("--steps-per-epoch", type=positive_int, metavar="N", help="default: one pass over the training images")
    group.add_argument("--lr", type=float, default=1e-4, help="peak learning rate of the cosine schedule (default: 1e-4)")
    group.add_argument("--warmup", type=float, default=0.0, metavar="EPOCHS", help="linear warm-up (default: 0)")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="AdamW or SGD with momentum 0.9 (default: adam)")
    group.add_argument("--weight-decay", type=float, default=5e-4, help="decoupled weight decay (default: 5e-4)")
    group.add_argument("--head", choices=HEADS, default="arcface", help="training head (default: arcface)")
    group.add_argument("--margin", type=float, help="head margin (default: arcface 0.5, cosface 0.35)")
    group.add_argument("--scale", type=float, default=30.0, help="head logit scale (default: 30)")
    group.add_argument("--freeze", type=int, default=0, metavar="N", help=f"keep the first N of {STAGES} convolution stages fixed (default: 0)")
    group.add_argument("--from-scratch", action="store_true", help="random initial weights instead of --model's")
    group.add_argument("--dropout", type=float, default=0.4, help="dropout before the projection (default: 0.4)")
    group.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True, help="random mirror, crop/scale, rotation, brightness/contrast, blur (default: on)")
    group.add_argument("--balance", choices=BALANCES, default="none", help="class-balanced sampling or class weights, also with --from-shards (default: none)")
    group.add_argument("--patience", type=positive_int, default=3, help="early stopping patience in epochs (default: 3)")
    group.add_argument("--precision", choices=PRECISIONS, default="auto", help="mixed float16 on a GPU with auto (default)")
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted run: from the newest checkpoint in MODEL_DIR/checkpoints/ (one is "
                            "written every epoch); with --folds, keep the finished folds (MODEL_DIR/folds/) and continue "
                            "the interrupted one; with --search, mark this run's killed trials failed, continue them from "
                            "their checkpoints and run only the trials still missing to reach N for this run")
    group.add_argument("--val-pairs", type=positive_int, default=600, metavar="N", help="validation pairs, half same-person (default: 600)")
    group = train.add_argument_group("several machines (tf.distribute.MultiWorkerMirroredStrategy; or set TF_CONFIG)")
    group.add_argument("--workers", metavar="HOST:PORT,...",
                       help="every worker's address, the same list on each machine (the first is the chief, which alone "
                            "writes MODEL_DIR; the others write to a temporary folder); builds TF_CONFIG")
    group.add_argument("--worker-index", type=int, metavar="N", help="this machine's place in --workers (0: the chief)")
    group = train.add_argument_group("research")
    group.add_argument("--folds", type=fold_count, metavar="K", help="K-fold cross-validation by person (mean and std; no model written)")
    group.add_argument("--search", type=positive_int, metavar="N",
                       help="N trials of an optuna search (TPE, median pruning) over learning rate, margin, frozen depth")
    group.add_argument("--study-storage", metavar="URL",
                       help="where the search's optuna study lives, e.g. sqlite:///study.db or postgresql://user@host/db "
                            "(several machines sharing one search); default: MODEL_DIR/search/study.db, so a rerun continues it")
    group.add_argument("--study-name", metavar="NAME", help="the study in --study-storage (default: faceapp-search)")
    train.add_argument("--json", action="store_true", help="print the report as JSON")
    train.set_defaults(func=cmd_train)
