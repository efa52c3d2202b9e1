"""Training: data scan and split, augmentation, heads, a two-epoch run, export, re-embedding.

Fast core tests use synthetic arrays and ``tmp_path``; the training run uses 6 LFW
people (``lfw_dir`` fixture: skipped locally without LFW, failing in CI).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceapp.training.config import AugmentConfig, DataConfig, TrainConfig
from faceapp.training.data import (
    FaceSet,
    kfold_people,
    parse_folds,
    people_from_pairs,
    select_images,
    split_people,
    verification_pairs,
)


def _faceset(people: int, per_person: int, seed: int = 0) -> FaceSet:
    rng = np.random.default_rng(seed)
    count = people * per_person
    return FaceSet(
        images=rng.integers(0, 255, (count, 112, 112, 3), dtype=np.uint8),
        labels=np.repeat(np.arange(people, dtype=np.int32), per_person),
        names=tuple(f"person_{i:02d}" for i in range(people)),
        paths=tuple(f"p{i}.jpg" for i in range(count)),
        detected=np.ones(count, bool),
    )


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize("change", [
    {"epochs": 0}, {"head": "triplet"}, {"optimizer": "rmsprop"}, {"freeze": 15}, {"balance": "oversample"},
    {"learning_rate": 0.0}, {"head": "softmax", "margin": 0.3}, {"from_scratch": True, "freeze": 3},
])
def test_train_config_rejects_bad_values(change):
    with pytest.raises(ValueError):
        TrainConfig(**change).validate()


def test_data_config_rejects_bad_values(tmp_path):
    with pytest.raises(ValueError):
        DataConfig(tmp_path, val_fraction=1.0).validate()
    with pytest.raises(ValueError):
        AugmentConfig(rotation=90).validate()


# --------------------------------------------------------------------------- data
def test_split_by_person_never_leaks():
    names = [f"n{i}" for i in range(23)]
    for seed in range(5):
        train, val = split_people(names, 0.2, seed)
        assert not set(train) & set(val)
        assert set(train) | set(val) == set(names)
        assert len(val) >= 2 and len(train) >= 2
    groups = kfold_people(names, 4, seed=1)
    assert sum(len(g) for g in groups) == len(names)
    assert set().union(*groups) == set(names)
    assert all(not set(a) & set(b) for i, a in enumerate(groups) for b in groups[i + 1:])


def test_subset_relabels_and_keeps_only_those_people():
    faces = _faceset(5, 3)
    train, val = split_people(faces.names, 0.4, 0)
    sub_train, sub_val = faces.subset(train), faces.subset(val)
    assert set(sub_train.names).isdisjoint(sub_val.names)
    assert set(sub_train.labels) == set(range(len(train)))
    assert len(sub_train) + len(sub_val) == len(faces)
    assert not {faces.paths.index(p) for p in sub_train.paths} & {faces.paths.index(p) for p in sub_val.paths}


def test_verification_pairs_are_balanced_and_correct():
    labels = np.repeat(np.arange(4), 3)
    left, right, same = verification_pairs(labels, 20, seed=0)
    assert same.sum() == (~same).sum() == 10
    assert np.all((labels[left] == labels[right]) == same)
    assert np.all(left != right)


def test_flat_and_folder_layouts_and_people_filters(tmp_path):
    flat = tmp_path / "flat" / "images"
    flat.mkdir(parents=True)
    for name in ("Ann_Lee", "Bo", "Cy_D", "Di"):
        for k in (1, 2):
            (flat / f"{name}_{k:04d}.jpg").write_bytes(b"")
    (flat / "Eve_0001.jpg").write_bytes(b"")
    people = select_images(DataConfig(tmp_path / "flat"))
    assert list(people) == ["Ann_Lee", "Bo", "Cy_D", "Di"]  # Eve has one image
    folders = tmp_path / "folders"
    for name in ("a", "b", "c", "d", "e"):
        (folders / name).mkdir(parents=True)
        for k in range(3):
            (folders / name / f"{k}.png").write_bytes(b"")
    chosen = select_images(DataConfig(folders, people=("a", "b", "c", "e"), max_images_per_person=2))
    assert list(chosen) == ["a", "b", "c", "e"] and all(len(v) == 2 for v in chosen.values())
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("2 1\nAnn_Lee 1 2\nBo 1 Cy_D 1\nDi 1 2\nDi 1 Eve 1\n")
    assert people_from_pairs(pairs, parse_folds("1")) == ("Ann_Lee", "Bo", "Cy_D")
    assert people_from_pairs(pairs, parse_folds("2")) == ("Di", "Eve")
    assert parse_folds("1-3,5") == (1, 2, 3, 5)
    with pytest.raises(ValueError):
        parse_folds("3-1")


def test_training_stream_shapes_balance_and_augmentation():
    faces = _faceset(4, 2)
    faces = FaceSet(np.concatenate([faces.images] * 2), np.concatenate([faces.labels, np.zeros(8, np.int32)]),
                    faces.names, faces.paths * 2, np.ones(16, bool))  # person 0 has 10 of 16 images
    from faceapp.training.data import class_weights, train_dataset

    config = TrainConfig(batch_size=8, balance="sampling")
    inputs, labels, weights = next(iter(train_dataset(faces, config, seed=0)))
    assert inputs["face"].shape == (8, 112, 112, 3) and inputs["face"].dtype.name == "float32"
    assert float(inputs["face"].numpy().min()) >= 0.0 and float(inputs["face"].numpy().max()) <= 255.0
    plain = TrainConfig(batch_size=8, balance="sampling", augment=AugmentConfig(enabled=False))
    drawn = np.concatenate([batch[1].numpy() for batch in train_dataset(faces, plain, seed=1).take(16)])
    assert np.bincount(drawn, minlength=4).min() > 0.12 * len(drawn)  # ~uniform over people, not 10/16 for person 0
    weighted = TrainConfig(batch_size=8, balance="weights", augment=AugmentConfig(enabled=False))
    _, labels, weights = next(iter(train_dataset(faces, weighted, seed=0)))
    expected = class_weights(faces.labels, 4)
    assert np.allclose(weights.numpy(), expected[labels.numpy()])
    assert expected[0] < expected[1]


def test_margin_heads_penalise_the_true_class():
    from faceapp.training.heads import MarginHead

    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(6, 16)).astype(np.float32)
    labels = np.array([0, 1, 2, 0, 1, 2], np.int32)
    logits = {}
    for kind, margin in (("softmax", 0.0), ("arcface", 0.5), ("cosface", 0.35)):
        head = MarginHead(3, kind, margin, scale=10.0)
        head.build([(None, 16), (None,)])
        head.centres.assign(np.eye(16, 3, dtype=np.float32))
        logits[kind] = np.asarray(head([embeddings, labels]))
        assert logits[kind].shape == (6, 3)
    true = np.arange(6), labels
    assert np.all(logits["cosface"][true] < logits["softmax"][true])
    assert np.all(logits["arcface"][true] < logits["softmax"][true])
    others = np.ones_like(logits["softmax"], bool)
    others[true] = False
    assert np.allclose(logits["arcface"][others], logits["softmax"][others], atol=1e-5)


def test_threshold_calibration_orders_presets():
    from faceapp.training.export import calibrate_thresholds

    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0.6, 0.1, 200), rng.normal(0.1, 0.1, 200)])
    same = np.array([True] * 200 + [False] * 200)
    presets = calibrate_thresholds(scores, same)
    assert presets["strict"] >= presets["balanced"] >= presets["lenient"]
    assert 0.2 < presets["balanced"] < 0.5


def test_train_command_parses_into_configs(tmp_path):
    from faceapp.cli.main import build_parser
    from faceapp.cli.train import configs_from_args

    args = build_parser().parse_args(["train", str(tmp_path), "--out", str(tmp_path / "m"), "--head", "cosface", "--margin", "0.3",
                              "--freeze", "12", "--balance", "weights", "--optimizer", "sgd", "--lr", "0.01", "--epochs", "2"])
    data, config = configs_from_args(args)
    assert (config.head, config.head_margin, config.freeze, config.balance, config.optimizer) == ("cosface", 0.3, 12, "weights", "sgd")
    assert data.data_dir == tmp_path and data.people is None


# --------------------------------------------------------------------------- training
LFW_PEOPLE = 6


@pytest.fixture(scope="module")
def tiny_lfw(lfw_dir, tmp_path_factory):
    """6 LFW people with 4 images each, faces found and aligned (cached in tmp)."""
    from faceapp.training.data import load_faces

    config = DataConfig(lfw_dir, min_images=4, max_images_per_person=4, max_people=LFW_PEOPLE, val_fraction=0.34,
                        cache_dir=tmp_path_factory.mktemp("crops"))
    return config, load_faces(config)


@pytest.fixture(scope="module")
def trained(tiny_lfw, tmp_path_factory):
    """A two-epoch run (most of the backbone frozen) exported to a model directory."""
    from faceapp.training.run import train_and_export

    config, loaded = tiny_lfw
    train_config = TrainConfig(epochs=2, batch_size=8, steps_per_epoch=2, learning_rate=1e-3, freeze=13, dropout=0.0,
                               val_pairs=24, augment=AugmentConfig(enabled=False), verbose=0, patience=5)
    out = tmp_path_factory.mktemp("model")
    return train_and_export(config, train_config, out, loaded=loaded), out


def test_faces_are_cached_and_split_by_person(tiny_lfw):
    from faceapp.training.data import load_faces

    config, loaded = tiny_lfw
    assert len(loaded.faces.names) == LFW_PEOPLE and len(loaded.faces) == 4 * LFW_PEOPLE
    assert loaded.faces.images.shape[1:] == (112, 112, 3) and loaded.faces.images.dtype == np.uint8
    assert loaded.cache_file is not None and loaded.cache_file.is_file()
    again = load_faces(config)
    assert again.cache_file == loaded.cache_file
    assert np.array_equal(again.faces.images, loaded.faces.images)


def test_two_epochs_lower_the_loss_and_export_loads(trained, tiny_lfw):
    import json

    from faceapp.embedding.modelcard import load_card
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer

    report, out = trained
    losses = json.loads(Path(report["outputs"]["history"]).read_text())["history"]["loss"]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert Path(report["outputs"]["history_plot"]).is_file()
    people = json.loads((out / "people.json").read_text())
    assert not set(people["train"]) & set(people["validation"])
    card = load_card(out)
    assert card.model_id == report["model_id"] != "sface-2021dec"
    assert card.default_preset == "balanced" and set(card.threshold_presets) == {"strict", "balanced", "lenient"}
    recognizer = Recognizer.create(PipelineConfig(model_dir=out, device="cpu", backend="tensorflow"))
    image = tiny_lfw[1].faces.images[0]  # an aligned crop; run the pipeline on it padded as a photo
    photo = np.pad(image, ((60, 60), (60, 60), (0, 0)), mode="edge")
    result = recognizer.process(photo)
    assert result.faces, "the exported model's pipeline found no face"
    embeddings = np.stack([face.embedding for face in result.faces] + list(recognizer.embedder.embed(tiny_lfw[1].faces.images[:2])))
    assert embeddings.shape == (3, 128)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_reembed_switches_the_gallery_and_names_people_to_reenroll(trained, enrolled_gallery, recognizer):
    from faceapp.embedding.modelcard import load_card
    from faceapp.embedding.runtime import Embedder
    from faceapp.errors import ModelMismatchError
    from faceapp.storage.gallery import NewTemplate
    from faceapp.storage.reembed import reembed_gallery

    _, out = trained
    old_id = recognizer.embedder.model_id
    vector = enrolled_gallery.templates("obama")[0].embedding
    enrolled_gallery.add_person("no thumbnail", [NewTemplate(vector, old_id, thumbnail=None)])
    enrolled_gallery.add_templates("biden", [NewTemplate(vector, old_id, thumbnail=None)])
    # Faces marked "not obama": one with its crop (re-embedded), one without (removed).
    biden = enrolled_gallery.templates("biden")[0]
    enrolled_gallery.add_negatives("obama", [NewTemplate(biden.embedding, old_id, thumbnail=biden.thumbnail),
                                             NewTemplate(biden.embedding, old_id, thumbnail=None)])
    from faceapp.storage.memory import NewSighting

    made = enrolled_gallery.record([NewSighting(None, -1, "door", 1.8e9, 1.8e9 + 1, 3, 0.3, 0.8, biden.embedding[None], old_id,
                                                thumbnail=biden.thumbnail),
                                    NewSighting(None, None, "door", 1.8e9, 1.8e9 + 1, 3, 0.3, 0.8, biden.embedding[None], old_id)],
                                   purge=False)
    embedder = Embedder(load_card(out), device="cpu", backend="tensorflow")
    with pytest.raises(ModelMismatchError):
        enrolled_gallery.matrix(embedder.model_id)
    dry = reembed_gallery(enrolled_gallery, embedder, dry_run=True)
    assert dry.reembedded == 7 and enrolled_gallery.model_id() == old_id
    from faceapp.errors import GalleryError

    with pytest.raises(GalleryError, match="--force"):  # removing templates needs consent
        reembed_gallery(enrolled_gallery, embedder)
    assert enrolled_gallery.model_id() == old_id
    report = reembed_gallery(enrolled_gallery, embedder, force=True)
    assert (report.reembedded, report.removed) == (7, 3)
    # Obama lost only a "not them" face: he is neither to re-enroll nor partly re-embedded.
    assert report.must_reenroll == ("no thumbnail",) and report.partly_reembedded == ("biden",)
    matrix = enrolled_gallery.matrix(embedder.model_id)
    assert matrix.embeddings.shape == (6, 128) and set(matrix.names) == {"obama", "biden"}
    assert matrix.negatives.shape == (1, 128) and matrix.names[matrix.negative_index[0]] == "obama"
    assert np.allclose(matrix.negatives[0] @ matrix.embeddings[matrix.person_index == matrix.names.index("biden")][0], 1.0,
                       atol=1e-4)  # the same crop as biden's template, through the new model
    # Sightings follow: the one with a crop is re-embedded; the other keeps the old model.
    with_crop, without = (enrolled_gallery.sighting(i) for i in made.ids)
    assert with_crop.model_id == embedder.model_id and without.model_id == old_id
    assert np.allclose(with_crop.embeddings[0], matrix.negatives[0], atol=1e-4)
    assert np.allclose(np.linalg.norm(matrix.embeddings, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ModelMismatchError):
        enrolled_gallery.matrix(old_id)


def test_search_draws_within_ranges_and_crossval_summarises():
    optuna = pytest.importorskip("optuna")
    from faceapp.training.folds import format_crossval, summarise
    from faceapp.training.search import SearchSpace, suggest

    space = SearchSpace(learning_rate=(1e-4, 1e-2), margin=(0.2, 0.5), freeze=(10, 12))

    def draw(count, seed, **changes):
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        return [suggest(study.ask(), space, TrainConfig(**changes)) for _ in range(count)]

    trials = draw(8, seed=0)
    assert len(trials) == 8 and trials != draw(8, seed=1) and trials == draw(8, seed=0)
    assert all(1e-4 <= t["learning_rate"] <= 1e-2 and 0.2 <= t["margin"] <= 0.5 and t["freeze"] in (10, 12) for t in trials)
    assert all(t["margin"] == 0.0 for t in draw(3, seed=0, head="softmax"))
    assert all(t["freeze"] == 0 for t in draw(3, seed=0, from_scratch=True))
    rows = [{"fold": k + 1, "train_people": 8, "validation_people": 4,
             "before": {"accuracy": 0.9, "auc": 0.95}, "after": {"accuracy": a, "auc": 0.96}} for k, a in enumerate((0.9, 1.0))]
    summary = summarise(rows)
    assert summary["after_accuracy"] == {"mean": 0.95, "std": 0.05}
    assert "0.9500±0.0500" in format_crossval({"runs": rows, "summary": summary})


def test_reembed_keeps_an_encrypted_gallery_readable(trained, enrolled_gallery):
    from faceapp.embedding.modelcard import load_card
    from faceapp.embedding.runtime import Embedder
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.reembed import reembed_gallery

    enrolled_gallery.encrypt("secret words")
    embedder = Embedder(load_card(trained[1]), device="cpu", backend="tensorflow")
    report = reembed_gallery(enrolled_gallery, embedder)
    assert report.reembedded == 6 and not report.must_reenroll
    path = enrolled_gallery.path
    enrolled_gallery.close()
    with Gallery(path, passphrase="secret words") as reopened:
        matrix = reopened.matrix(embedder.model_id)
    assert matrix.embeddings.shape == (6, 128)
    assert np.allclose(np.linalg.norm(matrix.embeddings, axis=1), 1.0, atol=1e-5)


def test_reembed_with_the_same_model_changes_nothing(enrolled_gallery, recognizer):
    from faceapp.storage.reembed import reembed_gallery

    before = [t.embedding.tobytes() for t in enrolled_gallery.templates()]
    report = reembed_gallery(enrolled_gallery, recognizer.embedder)
    assert (report.reembedded, report.removed) == (0, 0)
    assert [t.embedding.tobytes() for t in enrolled_gallery.templates()] == before
