"""Training from a shard folder (``faceapp train --from-shards DIR --out MODEL_DIR``).

The people of ``DIR/manifest.json`` are split into training and validation by person
with :func:`faceapp.training.data.split_people` (as for in-memory sets). One pass that
parses only the labels counts each person's crops; people with fewer than
``min_images`` are left out. Training batches stream from the shards with
:func:`faceapp.training.shards.shard_dataset` (validation people filtered out by label
before any decoding, labels renumbered for the head); only the validation people's
crops are held in memory, for the per-epoch verification. ``--balance`` works from the
counts: the in-memory path's per-person loss weights, or a class-balanced stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceapp.training.data import FaceSet, TrainingDataError, augment_fn, split_people
from faceapp.training.shards import ShardError, read_manifest, shard_dataset, shard_files


def _label_of(serialized):
    import tensorflow as tf

    label = tf.io.parse_single_example(serialized, {"label": tf.io.FixedLenFeature([], tf.int64)})["label"]
    return tf.cast(label, tf.int32)


def shard_label_counts(shards_dir: str | os.PathLike) -> np.ndarray:
    """Crops per person (manifest order), int64, from a label-only pass over the shards."""
    import tensorflow as tf

    people = read_manifest(shards_dir)["people"]
    files = [str(path) for path in shard_files(shards_dir)]
    counts = np.zeros(len(people), np.int64)
    if files:
        labels = tf.data.TFRecordDataset(files).map(_label_of, num_parallel_calls=tf.data.AUTOTUNE).batch(4096)
        for batch in labels.as_numpy_iterator():
            counts += np.bincount(batch, minlength=len(people))[: len(people)]
    return counts


@dataclass(frozen=True)
class ShardTrainSet:
    """The training people of a shard folder, streamed (what :func:`train` needs of a
    :class:`FaceSet`: ``names``, ``len()``, plus :meth:`dataset` and :meth:`head_means`)."""

    shards_dir: Path
    names: tuple[str, ...]
    counts: np.ndarray  # crops per training person
    relabel: np.ndarray  # manifest label -> training label, -1 for everyone else

    def __len__(self) -> int:
        return int(self.counts.sum())

    def dataset(self, config, seed: int):
        """The training stream; ``config.balance`` as in memory, from :attr:`counts`
        (``"weights"``: the same per-person weights; ``"sampling"``: people equally
        often, resampled in the stream, see :func:`faceapp.training.shards.shard_dataset`)."""
        augment = augment_fn(config.augment, seed) if config.augment.enabled else None
        from faceapp.training.distributed import cluster

        # Several workers each keep their share of one stream: its order must be the same on all.
        return shard_dataset(self.shards_dir, batch_size=config.batch_size, augment=augment, seed=seed, relabel=self.relabel,
                             balance=config.balance, counts=self.counts, deterministic=cluster().multi_worker)

    def head_means(self, embed) -> np.ndarray:
        """Unit mean embedding per training person, ``(128, people)``, from one plain pass;
        ``embed``: RGB float32 batch -> unit embeddings."""
        sums = np.zeros((len(self.names), 128), np.float64)
        plain = shard_dataset(self.shards_dir, batch_size=256, shuffle_buffer=0, repeat=False, drop_remainder=False,
                              relabel=self.relabel)
        for features, labels, _ in plain.as_numpy_iterator():
            np.add.at(sums, labels, embed(features["face"]))
        means = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        return means.T.astype(np.float32)


def split_shards(shards_dir: str | os.PathLike, val_fraction: float, seed: int, min_images: int = 2):
    """``(ShardTrainSet, validation FaceSet, counts)``: people split by person; the
    validation people's crops read into memory (BGR, as :class:`FaceSet` holds them)."""
    import tensorflow as tf

    shards_dir = Path(shards_dir)
    try:
        people = tuple(read_manifest(shards_dir)["people"])
        counts = shard_label_counts(shards_dir)
    except ShardError as error:
        raise TrainingDataError(str(error)) from None
    kept = tuple(name for name, count in zip(people, counts) if count >= min_images)
    if len(kept) < 4:
        raise TrainingDataError(f"{shards_dir}: only {len(kept)} people have >= {min_images} faces; training needs at least 4")
    train_names, val_names = split_people(kept, val_fraction, seed)
    index = {name: i for i, name in enumerate(people)}
    relabel_train = np.full(len(people), -1, np.int32)
    relabel_train[[index[n] for n in train_names]] = np.arange(len(train_names), dtype=np.int32)
    relabel_val = np.full(len(people), -1, np.int32)
    relabel_val[[index[n] for n in val_names]] = np.arange(len(val_names), dtype=np.int32)
    table = tf.constant(relabel_val)
    files = [str(path) for path in shard_files(shards_dir)]
    from faceapp.training.shards import parse_record

    records = (tf.data.TFRecordDataset(files).filter(lambda s: tf.gather(table, _label_of(s)) >= 0).map(parse_record))
    images, labels, paths, detected = [], [], [], []
    for record in records.as_numpy_iterator():
        images.append(record["image"][..., ::-1])
        labels.append(relabel_val[record["label"]])
        paths.append(record["path"].decode())
        detected.append(bool(record["detected"]))
    val = FaceSet(np.stack(images), np.array(labels, np.int32), val_names, tuple(paths), np.array(detected, bool))
    train = ShardTrainSet(shards_dir, train_names, counts[[index[n] for n in train_names]], relabel_train)
    return train, val, dict(zip(people, counts.tolist()))
