"""The sharded crop cache: the crops equal the in-memory cache's, skipped files are
listed with a reason, an interrupted run resumes without rewriting finished shards,
and the tf.data reader streams (augmented) batches.

Uses the shared fixture photos (plus an unreadable file and grey, faceless images) and
40 LFW images (``lfw_dir``: skipped locally without LFW, failing in CI).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from faceapp.training.config import DataConfig
from faceapp.training.shards import ShardConfig, ShardError, prepare_shards, read_manifest, read_shards, shard_dataset


def _expected(config: DataConfig, leave_out: tuple[str, ...] = ()):
    """What faceapp.training.data produces for the same images: (crops, labels, paths)."""
    from faceapp.recognition.pipeline import PipelineConfig
    from faceapp.training.data import _detect_and_align, select_images

    people = {name: [p for p in paths if p.name not in leave_out] for name, paths in select_images(config, min_people=1).items()}
    crops, labels, _, usable, paths = _detect_and_align(people, config, PipelineConfig(), False)
    return crops[usable], labels[usable], tuple(str(p) for p in paths[usable])


@pytest.fixture(scope="module")
def photo_set(fixtures_dir, tmp_path_factory) -> Path:
    """obama/ biden/ groups/ from the fixtures, plus an unreadable ``obama/broken.jpg``, a
    non-image ``obama/notes.txt`` (never selected) and ``grey/`` (two faceless images)."""
    import cv2

    root = tmp_path_factory.mktemp("photos")
    for person in ("obama", "biden", "groups"):
        shutil.copytree(fixtures_dir / person, root / person)
    (root / "obama" / "broken.jpg").write_bytes(b"this is not a JPEG")
    (root / "obama" / "notes.txt").write_text("not an image")
    (root / "grey").mkdir()
    for i in (1, 2):
        cv2.imwrite(str(root / "grey" / f"grey_{i}.png"), np.full((400, 400, 3), 128, np.uint8))
    return root


@pytest.fixture(scope="module")
def lfw_config(lfw_dir) -> DataConfig:
    """40 LFW images: the first 20 people with >= 2 images, 2 each."""
    return DataConfig(lfw_dir, min_images=2, max_images_per_person=2, max_people=20)


def test_png_shards_hold_exactly_the_in_memory_crops(photo_set, tmp_path):
    config = DataConfig(photo_set, min_images=1)
    report = prepare_shards(config, tmp_path, shard_config=ShardConfig(images_per_shard=4, encoding="png"))
    crops, labels, names, paths, detected = read_shards(tmp_path)
    want_crops, want_labels, want_paths = _expected(config, leave_out=("broken.jpg",))
    assert names == ("biden", "grey", "groups", "obama")
    assert paths == want_paths and np.array_equal(labels, want_labels)
    assert np.array_equal(crops, want_crops)  # PNG: the same pixels
    assert detected.all()
    assert report.shards == 3 and report.images == len(want_paths) == 9  # 12 inputs, 3 skipped
    reasons = {Path(s["path"]).name: s["reason"] for entry in read_manifest(tmp_path)["shards"] for s in entry["skipped"]}
    assert set(reasons) == {"broken.jpg", "grey_1.png", "grey_2.png"}  # group photos: the centre face is picked
    assert reasons["broken.jpg"].startswith("unreadable: ") and reasons["grey_1.png"] == reasons["grey_2.png"] == "no face"
    assert "notes.txt" not in json.dumps(read_manifest(tmp_path))
    assert report.skipped == {"unreadable": 1, "no face": 2}


def test_several_faces_are_skipped_by_that_policy(photo_set, tmp_path):
    config = DataConfig(photo_set, min_images=1, people=("groups",))
    prepare_shards(config, tmp_path, shard_config=ShardConfig(multiple_faces="skip"))
    skipped = read_manifest(tmp_path)["shards"][0]["skipped"]
    group_photos = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in skipped}
    assert group_photos["obama_and_biden_1.jpg"].startswith("several faces (")
    assert group_photos["obama_and_biden_2.jpg"].startswith("several faces (")


def test_jpeg_shards_are_close_to_the_in_memory_crops(lfw_config, tmp_path):
    report = prepare_shards(lfw_config, tmp_path, shard_config=ShardConfig(images_per_shard=16))
    crops, labels, names, paths, _ = read_shards(tmp_path)
    want_crops, want_labels, want_paths = _expected(lfw_config)
    assert report.shards == 3 and len(names) == 20
    assert paths == want_paths and np.array_equal(labels, want_labels)
    assert all(Path(p).name.startswith(names[label] + "_") for p, label in zip(paths, labels))
    difference = np.abs(crops.astype(np.int16) - want_crops.astype(np.int16)).reshape(len(crops), -1).mean(axis=1)
    assert difference.max() < 3.0  # JPEG quality 95: about a level per pixel


def test_an_interrupted_run_resumes_and_equals_an_uninterrupted_one(lfw_config, tmp_path, monkeypatch):
    from faceapp.media import imageio

    settings = ShardConfig(images_per_shard=8)
    whole = prepare_shards(lfw_config, tmp_path / "whole", shard_config=settings)
    assert whole.written == (0, 1, 2, 3, 4) and whole.reused == ()

    real_read, calls = imageio.read_image, []

    def interrupted(path):
        calls.append(path)
        if len(calls) == 21:  # in the middle of the third shard
            raise KeyboardInterrupt
        return real_read(path)

    monkeypatch.setattr(imageio, "read_image", interrupted)
    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        prepare_shards(lfw_config, resumed, shard_config=settings)
    monkeypatch.setattr(imageio, "read_image", real_read)
    manifest = read_manifest(resumed)
    assert not manifest["complete"] and [e["index"] for e in manifest["shards"]] == [0, 1]
    assert sorted(p.name for p in resumed.iterdir()) == ["crops-00000.tfrecord", "crops-00001.tfrecord", "manifest.json"]
    with pytest.raises(ShardError, match="incomplete"):
        read_shards(resumed)
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in resumed.glob("*.tfrecord")}

    again = prepare_shards(lfw_config, resumed, shard_config=settings)
    assert again.reused == (0, 1) and again.written == (2, 3, 4)
    assert {name: (resumed / name).stat().st_ino for name in before} == {n: v[0] for n, v in before.items()}
    assert {name: (resumed / name).stat().st_mtime_ns for name in before} == {n: v[1] for n, v in before.items()}
    for left, right in zip(read_shards(tmp_path / "whole"), read_shards(resumed)):
        assert np.array_equal(np.asarray(left), np.asarray(right))
    assert read_manifest(resumed)["shards"] == read_manifest(tmp_path / "whole")["shards"]
    finished = prepare_shards(lfw_config, resumed, shard_config=settings)
    assert finished.written == () and finished.reused == (0, 1, 2, 3, 4)

    with pytest.raises(ShardError, match="other settings"):
        prepare_shards(lfw_config, resumed, shard_config=ShardConfig(images_per_shard=8, encoding="png"))


def test_reader_streams_augmented_batches(photo_set, tmp_path):
    from faceapp.training.config import AugmentConfig
    from faceapp.training.data import augment_fn

    prepare_shards(DataConfig(photo_set, min_images=1), tmp_path, shard_config=ShardConfig(images_per_shard=3, encoding="png"))
    crops, labels, *_ = read_shards(tmp_path)
    plain = shard_dataset(tmp_path, batch_size=4, shuffle_buffer=0, repeat=False, drop_remainder=False)
    images = np.concatenate([batch[0]["face"].numpy() for batch in plain])
    streamed = np.concatenate([batch[1].numpy() for batch in plain])
    assert images.dtype == np.float32 and len(images) == len(crops)
    order = lambda array: sorted(a.tobytes() for a in array)  # files are interleaved
    assert order(images.astype(np.uint8)[..., ::-1]) == order(crops)  # RGB out, BGR stored
    assert sorted(streamed) == sorted(labels)
    augmented = shard_dataset(tmp_path, batch_size=8, augment=augment_fn(AugmentConfig(), 0), shuffle_buffer=16)
    for (features, label, weight), _ in zip(augmented, range(3)):  # repeats past the 9 faces
        assert features["face"].shape == (8, 112, 112, 3) and label.shape == (8,) and np.all(weight.numpy() == 1.0)
        assert 0.0 <= features["face"].numpy().min() and features["face"].numpy().max() <= 255.0


def test_train_command_prepares_shards_with_one_line_errors(photo_set, tmp_path, capsys):
    from faceapp.cli.main import main

    assert main(["train", str(tmp_path / "missing"), "--shards", str(tmp_path / "s"), "-q"]) == 1
    assert "dataset folder not found" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["train", str(photo_set), "--shards", str(tmp_path / "file"), "-q"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("faceapp: error:") and "is a file" in error and error.count("\n") == 1
    with pytest.raises(SystemExit):  # --out and --shards are alternatives
        main(["train", str(photo_set), "--out", str(tmp_path / "m"), "--shards", str(tmp_path / "s")])
    capsys.readouterr()
    shards = tmp_path / "s"
    assert main(["train", str(photo_set), "--shards", str(shards), "--people", str(_people_file(tmp_path)),
                 "--min-images", "1", "--images-per-shard", "2", "--shard-encoding", "png", "-q", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 2 and report["shards"] == 1 and report["skipped"] == {}


def _people_file(tmp_path: Path) -> Path:
    path = tmp_path / "people.txt"
    path.write_text("biden\n")
    return path
