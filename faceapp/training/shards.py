"""A sharded crop cache for datasets of any size: detect and align once, into TFRecord
shards, then stream them with ``tf.data`` (memory stays flat as the dataset grows).

Each record is a ``tf.train.Example``: ``image`` (the uint8 112x112 aligned crop, encoded
by OpenCV from its BGR array as JPEG quality 95 by default, or PNG: an ordinary image
file, so TensorFlow's decoder returns RGB), ``label`` (int64 index into the
manifest's ``people``), ``name`` (the person), ``path`` (the source image) and
``detected`` (0 where the fixed centre alignment was used). JPEG is the default because
reading a large set is I/O bound and a q95 crop is about 4x smaller than PNG; its
artefacts (a level or two) are far smaller than the training augmentation. PNG is
lossless: the crops are exactly those of :func:`faceapp.training.data.load_faces`.

Faces are found by :func:`faceapp.training.data.face_aligner`, the same code as the
in-memory cache. The selected images, in order, are cut into chunks of
``images_per_shard`` inputs; chunk *k* becomes ``crops-0000k.tfrecord`` (fewer records
when images are skipped), written to a temporary name and renamed, and then recorded in
``manifest.json`` (also replaced atomically): its inputs' fingerprint (paths, sizes,
modification times), record count, size, sha256 and skipped files with the reason
(``unreadable: ...``, ``no face``, ``several faces (N)``). A rerun after an interruption
keeps every shard whose entry matches its chunk and file, and writes the rest; a folder
made with other settings (encoding, detector, people...) is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from faceapp.checksums import sha256_of
from faceapp.files import write_json
from faceapp.training.config import DataConfig
from faceapp.training.data import CROP, TrainingDataError

logger = logging.getLogger(__name__)

#: Bump when the record layout or the alignment changes.
SHARD_VERSION = 1
MANIFEST = "manifest.json"
ENCODINGS = ("jpeg", "png")
MULTIPLE_FACES = ("pick", "skip")


class ShardError(TrainingDataError):
    """The shard folder cannot be written, or holds shards of other settings."""


@dataclass(frozen=True)
class ShardConfig:
    """How the shards are written.

    Attributes:
        images_per_shard: input images per shard (a shard holds fewer when some are skipped).
        encoding: ``"jpeg"`` (``jpeg_quality``) or ``"png"`` (lossless).
        multiple_faces: an image with several detected faces: ``"pick"`` the subject as
            :func:`faceapp.training.data.load_faces` does (the face nearest the centre) or
            ``"skip"`` it (listed in the manifest).
    """

    images_per_shard: int = 1024
    encoding: str = "jpeg"
    jpeg_quality: int = 95
    multiple_faces: str = "pick"

    def validate(self) -> None:
        if self.images_per_shard < 1:
            raise ValueError(f"images_per_shard must be >= 1, got {self.images_per_shard}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        if not 50 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [50, 100], got {self.jpeg_quality}")
        if self.multiple_faces not in MULTIPLE_FACES:
            raise ValueError(f"multiple_faces must be one of {', '.join(MULTIPLE_FACES)}, got {self.multiple_faces!r}")


@dataclass(frozen=True)
class ShardsReport:
    """What :func:`prepare_shards` did: shard indices ``written`` now and ``reused``."""

    shards_dir: Path
    shards: int
    images: int
    written: tuple[int, ...]
    reused: tuple[int, ...]
    skipped: dict[str, int] = field(default_factory=dict)  # reason kind -> count

    def summary(self) -> dict:
        return {**asdict(self), "shards_dir": str(self.shards_dir), "written": len(self.written), "reused": len(self.reused)}


# --------------------------------------------------------------------------- writing
def shard_name(index: int) -> str:
    return f"crops-{index:05d}.tfrecord"


def encode_crop(crop: np.ndarray, config: ShardConfig) -> bytes:
    """A BGR uint8 ``(112, 112, 3)`` crop as JPEG or PNG bytes (an ordinary image file:
    OpenCV decodes it to BGR again, TensorFlow to RGB)."""
    import cv2

    if config.encoding == "jpeg":
        ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    else:
        ok, data = cv2.imencode(".png", crop)
    if not ok:
        raise ShardError(f"cannot encode a crop as {config.encoding}")
    return data.tobytes()


def _example(image: bytes, label: int, name: str, path: str, detected: bool) -> bytes:
    import tensorflow as tf

    def feature(value):
        if isinstance(value, bytes):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    features = {"image": image, "label": label, "name": name.encode(), "path": path.encode(), "detected": int(detected)}
    return tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in features.items()})).SerializeToString()


def write_shard(path: Path, records: Iterable[tuple[np.ndarray, int, str, str, bool]], config: ShardConfig) -> dict:
    """Write ``(crop, label, name, source path, detected)`` records to ``path`` via a
    temporary file renamed at the end; returns ``{"records", "bytes", "sha256"}``."""
    import tensorflow as tf

    temporary = path.with_name(path.name + ".tmp")
    count = 0
    try:
        with tf.io.TFRecordWriter(str(temporary)) as writer:
            for crop, label, name, source, detected in records:
                writer.write(_example(encode_crop(crop, config), label, name, source, detected))
                count += 1
        digest = sha256_of(temporary)  # in chunks: a shard may be large
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return {"records": count, "bytes": path.stat().st_size, "sha256": digest}


def _fingerprint(items: list[tuple[int, str, Path]]) -> str:
    digest = hashlib.sha256()
    for label, name, path in items:
        stat = path.stat()
        digest.update(f"{label}\0{name}\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _settings(config: DataConfig, shard_config: ShardConfig, detection, names: tuple[str, ...]) -> dict:
    detector = detection.detector
    return {
        "version": SHARD_VERSION, "encoding": shard_config.encoding, "jpeg_quality": shard_config.jpeg_quality,
        "multiple_faces": shard_config.multiple_faces, "images_per_shard": shard_config.images_per_shard,
        "no_face": config.no_face, "min_short_side": config.min_short_side,
        "detector": [detector.score_threshold, detector.nms_threshold, detector.min_face_size],
        "people_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest()[:24],
    }


def read_manifest(shards_dir: str | os.PathLike) -> dict:
    """The manifest of a shard folder (ShardError if missing or unreadable)."""
    path = Path(shards_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShardError(f"{shards_dir}: no {MANIFEST}; not a shard folder (make one with faceapp train DATA_DIR --shards DIR)") from None
    except (OSError, ValueError) as error:
        raise ShardError(f"cannot read {path}: {error}") from None


def _write_manifest(shards_dir: Path, manifest: dict) -> None:
    write_json(shards_dir / MANIFEST, manifest, what="shard manifest", indent=1)


def _open_folder(shards_dir: Path) -> None:
    if shards_dir.exists() and not shards_dir.is_dir():
        raise ShardError(f"{shards_dir}: is a file; the shards need a folder")
    try:
        shards_dir.mkdir(parents=True, exist_ok=True)
        probe = shards_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ShardError(f"cannot write shards to {shards_dir}: {error.strerror or error}") from None
    for stale in shards_dir.glob("*.tmp"):  # left by an interrupted run
        stale.unlink(missing_ok=True)


def _skip_reason(read_error: str | None, crop, found, shard_config: ShardConfig) -> str | None:
    if read_error is not None:
        return f"unreadable: {read_error}"
    if crop is None:
        return "no face"
    if shard_config.multiple_faces == "skip" and found.face_count > 1:
        return f"several faces ({found.face_count})"
    return None


def prepare_shards(config: DataConfig, shards_dir: str | os.PathLike, *, shard_config: ShardConfig | None = None,
                   model_dir=None, detection=None, progress: bool = False,
                   on_shard: Callable[[int, dict], None] | None = None) -> ShardsReport:
    """Find and align the faces of the images ``config`` selects into TFRecord shards in
    ``shards_dir``, resuming a previous run (see the module docstring).

    ``detection``: the pipeline configuration of the detector (default: that of
    ``model_dir``). ``on_shard(index, entry)`` is called after each shard is written and
    recorded (tests interrupt a run from it)."""
    from faceapp.errors import ImageReadError
    from faceapp.media.imageio import read_image
    from faceapp.recognition.pipeline import PipelineConfig
    from faceapp.training.data import face_aligner, select_images

    shard_config = shard_config or ShardConfig()
    try:
        config.validate()
        shard_config.validate()
    except ValueError as error:
        raise ShardError(str(error)) from None
    detection = detection or PipelineConfig(model_dir=model_dir)
    shards_dir = Path(shards_dir)
    people = select_images(config, min_people=1)
    names = tuple(people)
    items = [(label, name, path) for label, (name, paths) in enumerate(people.items()) for path in paths]
    size = shard_config.images_per_shard
    chunks = [items[start:start + size] for start in range(0, len(items), size)]
    settings = _settings(config, shard_config, detection, names)
    _open_folder(shards_dir)
    old = read_manifest(shards_dir) if (shards_dir / MANIFEST).is_file() else None
    if old is not None and old.get("settings") != settings:
        changed = sorted(k for k in settings if old.get("settings", {}).get(k) != settings[k])
        raise ShardError(f"{shards_dir} holds shards made with other settings ({', '.join(changed)}); "
                         "use another folder or delete this one")
    old_entries = {entry["index"]: entry for entry in (old or {}).get("shards", [])}
    manifest = {"settings": settings, "data_dir": str(config.data_dir), "people": list(names), "inputs": len(items),
                "complete": False, "shards": []}
    fingerprints = [_fingerprint(chunk) for chunk in chunks]
    reused = [k for k, fp in enumerate(fingerprints) if k in old_entries and old_entries[k]["inputs"] == fp
              and (shards_dir / shard_name(k)).is_file() and (shards_dir / shard_name(k)).stat().st_size == old_entries[k]["bytes"]]
    entries = {k: old_entries[k] for k in reused}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), initial=sum(len(chunks[k]) for k in reused), desc="aligning into shards", unit="image", leave=False)
    align = face_aligner(config, detection) if len(reused) < len(chunks) else None
    written = []
    try:
        for index, chunk in enumerate(chunks):
            if index in entries:
                continue
            skipped: list[dict] = []

            def records(chunk=chunk, skipped=skipped):
                for label, name, path in chunk:
                    crop = found = error = None
                    try:
                        image = read_image(path)
                    except ImageReadError as failure:  # listed in the manifest, not fatal
                        error = str(failure)
                    else:
                        crop, found = align(image)
                    reason = _skip_reason(error, crop, found, shard_config)
                    if bar is not None:
                        bar.update(1)
                    if reason is not None:
                        skipped.append({"path": str(path), "reason": reason})
                        continue
                    yield crop, label, name, str(path), found.detected

            try:
                info = write_shard(shards_dir / shard_name(index), records(), shard_config)
            except OSError as error:
                raise ShardError(f"cannot write shards to {shards_dir}: {error.strerror or error}") from None
            entries[index] = {"index": index, "file": shard_name(index), "inputs": fingerprints[index],
                              "first": index * size, "sources": len(chunk), **info, "skipped": skipped}
            manifest["shards"] = [entries[k] for k in sorted(entries)]
            _write_manifest(shards_dir, manifest)
            written.append(index)
            if on_shard is not None:
                on_shard(index, entries[index])
    finally:
        if bar is not None:
            bar.close()
    for extra in sorted(set(old_entries) - set(range(len(chunks)))):  # the dataset shrank
        (shards_dir / shard_name(extra)).unlink(missing_ok=True)
    manifest["shards"] = [entries[k] for k in range(len(chunks))]
    manifest["images"] = sum(entry["records"] for entry in manifest["shards"])
    manifest["complete"] = True
    _write_manifest(shards_dir, manifest)
    kinds: dict[str, int] = {}
    for entry in manifest["shards"]:
        for skip in entry["skipped"]:
            kind = skip["reason"].split(":")[0].split(" (")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
    if kinds:
        logger.warning("%d of %d images skipped (%s); listed in %s", sum(kinds.values()), len(items),
                       ", ".join(f"{v} {k}" for k, v in kinds.items()), shards_dir / MANIFEST)
    return ShardsReport(shards_dir, len(chunks), manifest["images"], tuple(written), tuple(reused), kinds)


def write_crop_shards(crops: np.ndarray, labels: np.ndarray, names: tuple[str, ...], paths: tuple[str, ...],
                      shards_dir: str | os.PathLike, *, shard_config: ShardConfig | None = None, copies: int = 1,
                      augment: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """Test mode: shards of already aligned BGR uint8 ``(N, 112, 112, 3)`` ``crops``, each
    written ``copies`` times (every copy after the first passed through ``augment``, a
    BGR uint8 crop -> crop function) to make large synthetic sets. The manifest says
    ``"synthetic": copies``. Returns the manifest."""
    shard_config = shard_config or ShardConfig()
    shards_dir = Path(shards_dir)
    _open_folder(shards_dir)
    total = len(crops) * copies
    entries = []
    for index, start in enumerate(range(0, total, shard_config.images_per_shard)):
        rows = range(start, min(total, start + shard_config.images_per_shard))

        def records(rows=rows):
            for row in rows:
                copy, i = divmod(row, len(crops))
                crop = crops[i] if copy == 0 or augment is None else augment(crops[i])
                yield crop, int(labels[i]), names[labels[i]], f"{paths[i]}#copy{copy}", True

        info = write_shard(shards_dir / shard_name(index), records(), shard_config)
        entries.append({"index": index, "file": shard_name(index), "sources": len(rows), **info, "skipped": []})
    manifest = {"settings": {"version": SHARD_VERSION, "encoding": shard_config.encoding, "synthetic": copies},
                "people": list(names), "inputs": total, "images": total, "complete": True, "shards": entries}
    _write_manifest(shards_dir, manifest)
    return manifest


# --------------------------------------------------------------------------- reading
def shard_files(shards_dir: str | os.PathLike) -> list[Path]:
    """The shard files a complete shard folder lists (ShardError if incomplete)."""
    manifest = read_manifest(shards_dir)
    if not manifest.get("complete"):
        raise ShardError(f"{shards_dir}: the shards are incomplete; rerun the same command to finish them")
    return [Path(shards_dir) / entry["file"] for entry in manifest["shards"] if entry["records"]]


def parse_record(serialized):
    """One serialized Example -> ``{"image": RGB uint8 (112, 112, 3), "label": int32,
    "name": string, "path": string, "detected": bool}`` tensors."""
    import tensorflow as tf

    spec = {
        "image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64),
        "name": tf.io.FixedLenFeature([], tf.string), "path": tf.io.FixedLenFeature([], tf.string),
        "detected": tf.io.FixedLenFeature([], tf.int64),
    }
    example = tf.io.parse_single_example(serialized, spec)
    image = tf.io.decode_image(example["image"], channels=3, expand_animations=False)
    image = tf.ensure_shape(image, (CROP, CROP, 3))
    return {"image": image, "label": tf.cast(example["label"], tf.int32), "name": example["name"],
            "path": example["path"], "detected": example["detected"] > 0}


def balanced_copies(counts: np.ndarray) -> np.ndarray:
    """``--balance sampling`` of a stream: the mean number of copies of each record of
    person *c*, float64 ``(classes,)``: ``mean_count / counts[c]`` (0 for a person with no
    images), so every person is expected ``mean_count`` times per pass over the shards
    and a pass is as long as without balancing."""
    counts = np.asarray(counts, np.float64)
    present = counts > 0
    if not present.any():
        return np.zeros(len(counts))
    mean = counts[present].mean()
    return np.where(present, mean / np.maximum(counts, 1), 0.0)


def shard_dataset(shards_dir: str | os.PathLike, *, batch_size: int = 64, augment=None, shuffle_buffer: int = 4096,
                  seed: int = 0, repeat: bool = True, cycle_length: int = 4, drop_remainder: bool = True,
                  relabel=None, balance: str = "none", counts=None, deterministic: bool = False):
    """A ``tf.data`` stream of batches from the shards, shaped as
    :func:`faceapp.training.data.train_dataset`'s: ``({"face": (B, 112, 112, 3) RGB float32
    in [0, 255], "label": (B,) int32}, label, weight (B,) float32)``.

    Files are shuffled and read ``cycle_length`` at a time (interleaved), records are
    decoded in parallel and shuffled in a buffer of ``shuffle_buffer`` crops, so memory
    is bounded by the buffer, not the dataset. ``augment``: an RGB float32 image -> image
    map such as :func:`faceapp.training.data.augment_fn`'s. ``relabel``: int array, the
    manifest label -> the label to emit, -1 to leave the record out (filtered on the
    label alone, before the image is decoded). ``deterministic``: the shards' records
    interleave in the same order on every run of the seed (slower; what workers that each
    keep a share of one stream need), else in whatever order they are read.

    ``balance`` (as :attr:`faceapp.training.config.TrainConfig.balance`) needs
    ``counts``, the images per emitted label (what :func:`faceapp.training.from_shards.
    split_shards` counted). ``"weights"``: the weight of an example is
    :func:`faceapp.training.data.count_weights` of its person, exactly the in-memory
    path's weights (mean 1 over the images); otherwise 1. ``"sampling"``: a
    class-balanced stream by *resampling each record in the stream*: a record of person
    *c* is emitted ``floor(r_c)`` or ``floor(r_c) + 1`` times (stochastic rounding, mean
    ``r_c``; see :func:`balanced_copies`), before the shuffle buffer and the decoding,
    so majority people are thinned and minority people repeated (each copy augmented
    on its own) and every person is expected equally often. Why this and not the
    alternatives: ``tf.data``'s ``rejection_resample`` can only drop records, so it
    reads ``mean_count / min_count`` records per one kept (many times the data on a
    long-tailed set such as LFW), and with ``initial_dist`` it mixes in a second
    iterator over the whole input pipeline; one stream per person (``sample_from_datasets``)
    means thousands of open readers, each filtering every shard, or per-person shard
    files. Resampling in line reads every record once per pass, keeps no state but the
    existing shuffle buffer (memory stays flat) and, unlike drawing people from a table,
    needs no index of the records. The draw of a record is a stateless function of
    ``seed``, the pass, the file and the record's position in it, so the same seed makes
    the same copies whatever order the parallel reads deliver the records in."""
    import tensorflow as tf

    from faceapp.training.config import BALANCES
    from faceapp.training.data import count_weights

    if balance not in BALANCES:
        raise ValueError(f"balance must be one of {', '.join(BALANCES)}, got {balance!r}")
    if balance != "none" and counts is None:
        raise ValueError(f"balance {balance!r} needs the images per label (counts)")
    files = [str(path) for path in shard_files(shards_dir)]
    if not files:
        raise ShardError(f"{shards_dir}: the shards hold no faces")
    autotune = tf.data.AUTOTUNE
    table = None if relabel is None else tf.constant(np.asarray(relabel, np.int32))
    label_only = {"label": tf.io.FixedLenFeature([], tf.int64)}

    def emitted(serialized):  # the label this record is emitted with, int32 (-1: left out)
        label = tf.cast(tf.io.parse_single_example(serialized, label_only)["label"], tf.int32)
        return label if table is None else tf.gather(table, label)

    if balance == "sampling":
        copies = tf.constant(balanced_copies(counts), tf.float32)
        ids = tf.data.Dataset.from_tensor_slices((tf.range(len(files), dtype=tf.int64), files))
        ids = ids.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ids = ids.repeat()
        ids = ids.enumerate()  # (visit, (file index, file)): pass = visit // files

        def copied(stream, position, serialized):
            label = emitted(serialized)
            rate = tf.gather(copies, tf.maximum(label, 0))
            key = tf.stack([tf.constant(seed, tf.int64), stream * (1 << 32) + position])
            draw = tf.random.stateless_uniform([], seed=key, dtype=tf.float32)
            count = tf.cast(tf.floor(rate) + tf.cast(draw < rate - tf.floor(rate), tf.float32), tf.int64)
            count = tf.where(label >= 0, count, tf.constant(0, tf.int64))
            return tf.data.Dataset.from_tensors(serialized).repeat(count)

        def read(visit, item):  # one file's records, each repeated 0, 1, 2... times
            index, path = item
            stream = (visit // len(files)) * len(files) + index  # unique per (pass, file)
            return tf.data.TFRecordDataset(path).enumerate().flat_map(lambda position, s: copied(stream, position, s))

        dataset = ids.interleave(read, cycle_length=min(cycle_length, len(files)),
                                 num_parallel_calls=autotune, deterministic=deterministic)
    else:
        dataset = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(cycle_length, len(files)),
                                     num_parallel_calls=autotune, deterministic=deterministic)
        if table is not None:
            dataset = dataset.filter(lambda s: emitted(s) >= 0)
    if shuffle_buffer > 1:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    weights = tf.constant(count_weights(counts) if balance == "weights" else np.ones(1, np.float32))

    def load(serialized):
        record = parse_record(serialized)
        image = tf.cast(record["image"], tf.float32)
        if augment is not None:
            image = augment(image)
        label = record["label"] if table is None else tf.gather(table, record["label"])
        weight = tf.gather(weights, label) if balance == "weights" else tf.ones((), tf.float32)
        return {"face": image, "label": label}, label, weight

    return dataset.map(load, num_parallel_calls=autotune).batch(batch_size, drop_remainder=drop_remainder).prefetch(autotune)


def read_shards(shards_dir: str | os.PathLike):
    """Every record in shard order, as numpy: ``(crops BGR uint8 (N, 112, 112, 3),
    labels int32 (N,), names tuple, paths tuple, detected bool (N,))``. For small sets
    and tests: this holds everything in memory."""
    import tensorflow as tf

    manifest = read_manifest(shards_dir)
    files = [str(path) for path in shard_files(shards_dir)]
    crops, labels, paths, detected = [], [], [], []
    for record in tf.data.TFRecordDataset(files).map(parse_record).as_numpy_iterator():
        crops.append(record["image"][..., ::-1])  # RGB -> BGR
        labels.append(record["label"])
        paths.append(record["path"].decode())
        detected.append(record["detected"])
    empty = np.zeros((0, CROP, CROP, 3), np.uint8)
    return (np.stack(crops) if crops else empty, np.array(labels, np.int32), tuple(manifest["people"]),
            tuple(paths), np.array(detected, bool))
