"""The run report of ``faceapp train`` (``MODEL_DIR/report.png`` and ``report.json``).

The identification figures are checked on synthetic embeddings; one tiny real run on 8
LFW people (``lfw_dir`` fixture: skipped locally without LFW, failing in CI) checks the
files and that their figures agree with the run's history and split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceapp.training.config import AugmentConfig, DataConfig, TrainConfig
from faceapp.training.data import FaceSet

LFW_PEOPLE = 8
PER_PERSON = 4


def _faces(counts: list[int]) -> FaceSet:
    labels = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    return FaceSet(np.zeros((len(labels), 112, 112, 3), np.uint8), labels, tuple(f"p{i}" for i in range(len(counts))),
                   tuple(f"p{label}_{i:04d}.jpg" for i, label in enumerate(labels)), np.ones(len(labels), bool))


def _clustered(faces: FaceSet, noise: float, seed: int = 0) -> np.ndarray:
    """Unit embeddings: one random direction per person plus ``noise``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(faces.names), 128))
    rows = centres[faces.labels] + noise * rng.normal(size=(len(faces), 128))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_identification_is_perfect_for_separated_people_and_counts_the_split():
    from faceapp.training.report import identification, identification_counts

    faces = _faces([3, 2, 1, 4, 2, 3])  # p2 has one image: never enrolled, a stranger only
    figures = identification(_clustered(faces, 0.01), faces, seed=1)
    assert figures["rank1"] == figures["rank5"] == 1.0
    assert figures["dir_at_far_0.01"] == 1.0 and figures["open_set_groups"] == 5
    assert identification_counts(faces) == {"people": 6, "images": 15, "enrolled_people": 5, "probes": 15 - 1 - 5}
    noisy = identification(_clustered(faces, 3.0), faces, seed=1)
    assert 0.0 <= noisy["rank1"] <= noisy["rank5"] <= 1.0 and 0.0 <= noisy["dir_at_far_0.01"] <= 1.0


def test_rank_k_counts_the_people_ranked_above_the_own_one():
    from faceapp.training.report import rank_k_rates

    similarity = np.array([[0.9, 0.1, 0.2], [0.5, 0.4, 0.3], [0.1, 0.2, 0.3]])  # probes of a, b, c
    rates = rank_k_rates(similarity, np.array(["a", "b", "c"]), np.array(["a", "b", "c"]), ranks=(1, 2, 3))
    assert rates == {1: pytest.approx(2 / 3), 2: 1.0, 3: 1.0}


@pytest.fixture(scope="module")
def reported(lfw_dir, tmp_path_factory):
    """A two-epoch run (most of the backbone frozen) on 8 LFW people, half of them validating."""
    from faceapp.training.data import load_faces
    from faceapp.training.run import train_and_export

    data = DataConfig(lfw_dir, min_images=PER_PERSON, max_images_per_person=PER_PERSON, max_people=LFW_PEOPLE,
                      val_fraction=0.5, cache_dir=tmp_path_factory.mktemp("crops"))
    config = TrainConfig(epochs=2, batch_size=8, steps_per_epoch=2, learning_rate=1e-3, freeze=13, dropout=0.0,
                         val_pairs=24, augment=AugmentConfig(enabled=False), verbose=0, patience=5)
    out = tmp_path_factory.mktemp("model")
    return train_and_export(data, config, out, loaded=load_faces(data)), out


def test_a_run_writes_a_png_and_consistent_json(reported):
    report, out = reported
    assert report["outputs"]["report_plot"] == str(out / "report.png")
    assert report["outputs"]["report"] == str(out / "report.json")
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "report.json").read_text())
    assert "model_id" not in summary  # export_model would take the folder for another model's

    history = json.loads(Path(report["outputs"]["history"]).read_text())["history"]
    validation = report["validation"]
    assert summary["best_epoch"] == validation["best_epoch"] and summary["epochs_run"] == len(history["loss"]) == 2
    before, after = summary["verification"]["before"], summary["verification"]["after"]
    assert before["auc"] == pytest.approx(validation["before"]["auc"], abs=1e-5)
    assert after["auc"] == pytest.approx(max([before["auc"]] + history["val_verification_auc"]), abs=1e-6)
    assert after["auc"] == pytest.approx(validation["after"]["auc"], abs=1e-5)
    for figures in (before, after):
        assert all(0.0 <= figures[key] <= 1.0 for key in ("accuracy", "auc", "eer"))
        assert figures["tar_at_far_0.001"] is None  # 12 impostor pairs cannot resolve FAR 1e-3

    people = json.loads((out / "people.json").read_text())["validation"]
    counts = summary["counts"]
    assert counts["people"] == len(people) == report["data"]["validation"]["people"] == LFW_PEOPLE // 2
    assert counts["images"] == report["data"]["validation"]["images"] == len(people) * PER_PERSON
    assert counts["enrolled_people"] == len(people) and counts["probes"] == len(people) * (PER_PERSON - 1)
    assert counts["pairs"] == validation["pairs"] == counts["genuine_pairs"] + counts["impostor_pairs"]
    for name in ("before", "after"):
        figures = summary["identification"][name]
        assert 0.0 <= figures["rank1"] <= figures["rank5"] <= 1.0
        assert figures["rank5"] == 1.0  # only 4 people: everyone's own person is in the top 5
        assert 0.0 <= figures["dir_at_far_0.01"] <= 1.0
        assert figures["open_set_groups"] == len(people)  # 4 people: 4 groups of one stranger
