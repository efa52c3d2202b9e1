"""The training loop: SFace backbone + margin head, ``model.fit`` and its callbacks.

The training model maps ``{"face": RGB float32 (B, 112, 112, 3) in [0, 255], "label":
int32 (B,)}`` to head logits ``(B, C)``; only the backbone (the embedding network) is
kept. After every epoch the ``VerificationCallback`` (:mod:`faceapp.training.validation`)
embeds the validation people's faces, scores its fixed verification pairs and adds ``val_verification_accuracy``
(k-fold, thresholds chosen on the other folds) and ``val_verification_auc`` to the
logs; early stopping and the best checkpoint follow the AUC. Epoch 0 (before any
step) is measured too, so every run says whether it helped.

Devices: ``tf.distribute.MirroredStrategy`` over every GPU when there are several (the
batch size is global), ``MultiWorkerMirroredStrategy`` across machines when ``TF_CONFIG``
names several workers (:mod:`faceapp.training.distributed`; the batch size is global
across all of them), mixed float16 precision on a GPU (``precision="auto"``).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.training.checkpoints import save_weights_atomically
from faceapp.training.config import STAGES, TrainConfig
from faceapp.training.data import FaceSet, steps_per_epoch, train_dataset, verification_pairs
from faceapp.training.validation import (  # MONITOR, Verification, embed_faces, verify: also importable from here
    MONITOR,
    Verification,
    embed_faces,
    plot_history,
    tensorboard_callback,
    verification_callback_class,
    verify,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced.

    Attributes:
        backbone: the trainable SFace Keras model carrying the best epoch's weights.
        history: per-epoch lists (``loss``, ``accuracy``, ``val_verification_accuracy``,
            ``val_verification_auc``, ``learning_rate``), epoch 1 first.
        before: validation verification of the initial network (epoch 0).
        best: validation verification at ``best_epoch`` (0 if no epoch beat the start).
        best_epoch: 1-based; 0 means the initial weights were kept.
        images_per_second: training throughput (augmented images through the step).
        device: where it ran, e.g. "CPU", "1 GPU (mixed_float16)", "2 GPUs (MirroredStrategy)".
        outputs: paths written (history plot, TensorBoard logs, checkpoint).
        epoch_seconds: wall time of each epoch's training steps (the first includes tracing).
        last_epoch_weights_sha256: multi-worker runs only: SHA-256 of the backbone's weights
            after the last epoch (before the best epoch's are loaded), equal on every worker.
        before_embeddings: unit float32 ``(N, 128)`` embeddings of the validation faces
            (rows of ``val_faces.images``) by the initial network, for the run report
            (:mod:`faceapp.training.report`); None if not kept.
    """

    backbone: Any
    history: dict[str, list[float]]
    before: Verification
    best: Verification
    best_epoch: int
    images_per_second: float
    seconds: float
    device: str
    outputs: dict[str, str]
    epoch_seconds: tuple[float, ...] = ()
    resumed_from_epoch: int = 0
    last_epoch_weights_sha256: str | None = None
    before_embeddings: np.ndarray | None = None


# --------------------------------------------------------------------------- helpers
def choose_strategy():
    """``(strategy, description, gpu_count)``: MultiWorkerMirroredStrategy when ``TF_CONFIG``
    names several workers (:mod:`faceapp.training.distributed`), else MirroredStrategy over
    several GPUs, else the default strategy (one GPU or the CPU). ``gpu_count`` is this
    machine's."""
    import tensorflow as tf

    from faceapp.training import distributed

    multi = distributed.strategy()  # before list_physical_devices: it must come first
    gpus = tf.config.list_physical_devices("GPU")
    if multi is not None:
        current = distributed.cluster()
        local = f"{len(gpus)} GPU{'s' if len(gpus) != 1 else ''}" if gpus else "CPU"
        return multi, f"{current.workers} workers x {local} (MultiWorkerMirroredStrategy)", len(gpus)
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        return strategy, f"{len(gpus)} GPUs (MirroredStrategy)", len(gpus)
    return tf.distribute.get_strategy(), ("1 GPU" if gpus else "CPU"), len(gpus)


def shard_for_workers(dataset, strategy):
    """Under MultiWorkerMirroredStrategy: shard the stream by element (every worker runs
    the same seeded pipeline and keeps its share of each global batch), whatever it reads
    from (the shard files of ``--from-shards`` may be fewer than the workers)."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def fit_under_multi_worker(model, strategy) -> None:
    """Work around two failures of Keras 3's ``fit`` under MultiWorkerMirroredStrategy
    (Keras 3.15): (1) before the first step it builds the model from one batch averaged
    over the replicas with ``strategy.reduce``, which the collective strategy refuses for
    a dict of inputs; only shapes and dtypes matter there, so this model builds from the
    first local replica's batch instead (the batch is consumed either way); (2) it
    reduces each step's logs with ``strategy.reduce("MEAN", value, axis=0)``, which
    fails for the scalar metrics every step returns; the step returns them as shape
    ``(1,)`` instead, which that reduction turns back into scalars (the metrics are
    already synchronised, so the mean changes nothing). No-op otherwise."""
    import types

    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or not hasattr(model, "_maybe_symbolic_build"):
        return

    def first_replica(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if getattr(self, "_distribute_strategy", None) is None:
            return
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(first_replica, next(batches))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = types.MethodType(maybe_symbolic_build, model)
    train_step = model.train_step

    def vector_logs_train_step(data):
        return tf.nest.map_structure(lambda value: tf.reshape(value, [1]), train_step(data))

    model.train_step = vector_logs_train_step


def stage_of(layer_name: str) -> int | None:
    """The convolution stage (1..14) a backbone layer belongs to; None for the head
    layers (bn1, dropout, flatten, pre_fc1, fc1) and the input scaling."""
    for stage in range(STAGES, 0, -1):
        if layer_name.startswith(f"conv_{stage}_"):
            return stage
    return None


def freeze_backbone(backbone, stages: int, freeze_batch_norm: bool) -> int:
    """Make the first ``stages`` stages untrainable (and, with ``freeze_batch_norm``,
    every batch norm: inference mode, statistics kept). Returns the trainable weight count."""
    import keras

    for layer in backbone.layers:
        stage = stage_of(layer.name)
        frozen = stage is not None and stage <= stages
        if freeze_batch_norm and isinstance(layer, keras.layers.BatchNormalization):
            frozen = True
        layer.trainable = not frozen
    return int(sum(np.prod(w.shape) for w in backbone.trainable_weights))


def build_backbone(config: TrainConfig, model_dir=None):
    """The trainable SFace model: shipped (or ``model_dir``'s) weights, or random ones. Of
    the fused model (the default) its SFace network is taken."""
    from faceapp.embedding.sface import build_sface

    backbone = build_sface(dropout=config.dropout)
    if not config.from_scratch:
        from faceapp.embedding.modelcard import load_card
        from faceapp.embedding.runtime import load_keras_model

        card = load_card(model_dir)
        if card.is_ensemble:  # the fused default: its SFace network is the one trained
            card = next((m for m in card.members if m.architecture == "sface"), card)
        if card.architecture != "sface":
            from faceapp.training.data import TrainingDataError

            raise TrainingDataError(f"training fine-tunes SFace; the model {card.model_id!r} is {card.architecture!r} "
                                    "(give an SFace model with --model, or --from-scratch)")
        backbone.set_weights(load_keras_model(card).get_weights())
        logger.info("starting from model %s", card.model_id)
    return backbone


def make_optimizer(config: TrainConfig, total_steps: int, warmup_steps: int):
    """AdamW or SGD with momentum, on a cosine learning-rate schedule (linear warm-up)."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else config.learning_rate,
        decay_steps=max(1, total_steps - warmup_steps),
        alpha=0.05,
        warmup_target=config.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    if config.optimizer == "adam":
        return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    return keras.optimizers.SGD(learning_rate=schedule, momentum=config.momentum, weight_decay=config.weight_decay)


# --------------------------------------------------------------------------- train
def train(train_faces: FaceSet, val_faces: FaceSet, config: TrainConfig, out_dir: str | Path, *, seed: int = 0, model_dir=None,
          checkpoint_dir: str | Path | None = None, resume: bool = False, restore_dir: str | Path | None = None,
          callbacks: tuple = ()) -> TrainResult:
    """Train on ``train_faces``' people, validate on ``val_faces``' people (disjoint).

    Writes under ``out_dir``: ``checkpoints/best.weights.h5`` (the best backbone),
    ``tensorboard/`` logs and ``history.png``. Returns the backbone with the best
    epoch's weights (the initial ones if no epoch improved the validation AUC).

    ``checkpoint_dir``: a resumable checkpoint there at every epoch end
    (:mod:`faceapp.training.checkpoints`); with ``resume`` the newest one is continued
    (a fresh start when there is none), without it earlier ones are removed.
    ``restore_dir``: resume from the checkpoints there instead (a non-chief worker of a
    multi-worker run writes to a temporary ``checkpoint_dir`` but resumes from the chief's).
    ``callbacks``: more Keras callbacks, run after the verification one (so they can read
    the epoch's validation AUC, ``logs[MONITOR]``); e.g. the search's pruning callback.
    """
    import keras
    import tensorflow as tf

    from faceapp.training import checkpoints as ckpt

    config.validate()
    overlap = set(train_faces.names) & set(val_faces.names)
    if overlap:
        raise ValueError(f"people on both sides of the split: {sorted(overlap)[:5]}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    strategy, device, gpu_count = choose_strategy()
    replicas = int(strategy.num_replicas_in_sync)
    if config.batch_size % replicas:
        from faceapp.training.data import TrainingDataError

        raise TrainingDataError(f"the batch size {config.batch_size} (global) must be a multiple of the {replicas} replicas")
    mixed = config.precision == "mixed" or (config.precision == "auto" and gpu_count > 0)
    previous_policy = keras.config.dtype_policy()
    if mixed:
        keras.config.set_dtype_policy("mixed_float16")
        device += " (mixed_float16)"
    logger.info("training on %s: %d people (%d images), validating on %d people (%d images)",
                device, len(train_faces.names), len(train_faces), len(val_faces.names), len(val_faces))
    try:
        from faceapp.training.heads import MarginHead

        steps = steps_per_epoch(train_faces, config)
        total_steps = steps * config.epochs
        with strategy.scope():
            backbone = build_backbone(config, model_dir)
            trainable = freeze_backbone(backbone, config.freeze, freeze_batch_norm=not config.from_scratch)
            if replicas > 1:  # batch statistics over every replica's batch, so the replicas' moving statistics agree
                for layer in backbone.layers:
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.synchronized = True
            logger.info("%d trainable backbone weights (first %d of %d stages frozen)", trainable, config.freeze, STAGES)
            face = keras.Input((112, 112, 3), name="face")
            label = keras.Input((), dtype="int32", name="label")
            head = MarginHead(len(train_faces.names), config.head, config.head_margin, config.scale, name="margin_head")
            logits = head([backbone(face), label])
            model = keras.Model({"face": face, "label": label}, logits, name="sface_training")
            if config.init_head_from_means and not config.from_scratch and hasattr(train_faces, "head_means"):  # streamed
                head.centres.assign(train_faces.head_means(
                    lambda rgb: embed_faces(backbone, np.ascontiguousarray(rgb[..., ::-1]).astype(np.uint8))))
            elif config.init_head_from_means and not config.from_scratch:
                means = np.zeros((128, len(train_faces.names)), np.float32)
                embeddings = embed_faces(backbone, train_faces.images)
                for person in range(len(train_faces.names)):
                    centre = embeddings[train_faces.labels == person].mean(axis=0)
                    means[:, person] = centre / max(float(np.linalg.norm(centre)), 1e-12)
                head.centres.assign(means)
            optimizer = make_optimizer(config, total_steps, round(config.warmup_epochs * steps))
            model.compile(
                optimizer=optimizer,
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            )
            fit_under_multi_worker(model, strategy)
        pairs = verification_pairs(val_faces.labels, config.val_pairs, seed)
        before_embeddings = embed_faces(backbone, val_faces.images)
        before = verify(before_embeddings, *pairs)
        logger.info("before training: validation verification accuracy %.4f, AUC %.4f", before.accuracy, before.auc)
        checkpoint = out / "checkpoints" / "best.weights.h5"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        save_weights_atomically(backbone, checkpoint)
        saved, initial_epoch, prior_history, prior_seconds, stopped = None, 0, {}, [], [False]
        store = None
        if checkpoint_dir is not None:
            identity = {"config": config.to_json(), "seed": int(seed), "train_people": list(train_faces.names),
                        "val_people": list(val_faces.names)}
            with strategy.scope():
                optimizer.build(model.trainable_variables)
            store = ckpt.TrainingCheckpoints(checkpoint_dir, model, optimizer, backbone, identity)
            saved = store.restore(restore_dir) if resume else None
            if saved is None:
                if resume:
                    logger.info("no checkpoint in %s: starting at epoch 0", checkpoint_dir)
                store.discard()
            else:
                initial_epoch = int(saved["epoch"])
                prior_history = {key: list(values) for key, values in saved["history"].items()}
                prior_seconds = list(saved.get("epoch_seconds", []))
                stopped = [bool(saved.get("stopped"))]
                store.write_best(checkpoint)
                logger.info("resuming from the checkpoint of epoch %d of %d (%s)", initial_epoch, config.epochs, store.latest)
                keras.utils.set_random_seed(ckpt.resume_seed(seed, initial_epoch))
        verification = verification_callback_class()(backbone, val_faces, pairs, checkpoint, before,
                                                      on_best=store.keep_best if store is not None else None)
        if saved is not None:
            best = saved["best"]
            verification.best = Verification(best["accuracy"], best["auc"], best["threshold"],
                                             np.asarray(best["scores"], np.float64), np.asarray(best["same"], bool))
            verification.best_epoch = int(saved["best_epoch"])
        early_stopping = ckpt.resumable_early_stopping(saved.get("early_stopping") if saved else None, monitor=MONITOR,
                                                       mode="max", patience=config.patience, verbose=0)
        extra_callbacks = list(callbacks)
        callbacks = [
            verification,  # first: the others read the keys it adds to the logs
            early_stopping,
            keras.callbacks.CSVLogger(str(out / "history.csv"), append=initial_epoch > 0),
            *extra_callbacks,
        ]
        history_so_far = {key: list(values) for key, values in prior_history.items()}
        if store is not None:  # after the callbacks whose state it records
            callbacks.append(ckpt.callback(store, verification, early_stopping, history_so_far, prior_seconds, stopped))
        tensorboard = tensorboard_callback(out / "tensorboard")
        if tensorboard is not None:
            callbacks.append(tensorboard)
        stream = train_faces.dataset if hasattr(train_faces, "dataset") else functools.partial(train_dataset, train_faces)
        dataset = shard_for_workers(stream(config, ckpt.resume_seed(seed, initial_epoch)), strategy)
        started = time.perf_counter()
        if initial_epoch < config.epochs and not stopped[0]:
            fitted = model.fit(dataset, epochs=config.epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                               callbacks=callbacks, verbose=config.verbose, shuffle=False)  # the stream shuffles itself
            new_history = fitted.history
        else:
            new_history = {}
        seconds = time.perf_counter() - started
        history = {key: list(values) for key, values in prior_history.items()}
        for key, values in new_history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        epochs_run = len(history.get("loss", []))
        # Throughput from the epochs' own time (the validation embedding is excluded).
        all_epoch_seconds = prior_seconds + list(verification.epoch_seconds)
        train_seconds = sum(all_epoch_seconds) or seconds
        images_per_second = epochs_run * steps * config.batch_size / max(train_seconds, 1e-9)
        last_digest = None
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            from faceapp.training.distributed import weights_digest

            last_digest = weights_digest(backbone)
        backbone.load_weights(checkpoint)
        plot = plot_history(history, before, out / "history.png")
        (out / "history.json").write_text(json.dumps({
            "before": before.to_json(), "best_epoch": verification.best_epoch, "history": history,
            "resumed_from_epoch": initial_epoch,
        }, indent=2) + "\n", encoding="utf-8")
    finally:
        keras.config.set_dtype_policy(previous_policy)
    logger.info("best epoch %d: accuracy %.4f, AUC %.4f (before: %.4f, %.4f); %.1f images/s",
                verification.best_epoch, verification.best.accuracy, verification.best.auc, before.accuracy, before.auc, images_per_second)
    if math.isnan(history.get("loss", [0.0])[-1]):
        logger.warning("the loss became NaN: lower the learning rate")
    return TrainResult(
        backbone=backbone,
        history=history,
        before=before,
        best=verification.best,
        best_epoch=verification.best_epoch,
        images_per_second=float(images_per_second),
        seconds=float(seconds),
        device=device,
        epoch_seconds=tuple(all_epoch_seconds),
        resumed_from_epoch=initial_epoch,
        last_epoch_weights_sha256=last_digest,
        before_embeddings=before_embeddings,
        outputs={"history_plot": str(plot), "history_csv": str(out / "history.csv"),
                 "tensorboard": str(out / "tensorboard") if tensorboard is not None else None, "checkpoint": str(checkpoint), "history": str(out / "history.json"),
                 "checkpoints": str(checkpoint_dir) if checkpoint_dir is not None else None},
    )
