"""The open-set decision rule: calibrated thresholds rise with the gallery, the tail
model is consistent, cohort shifts and overrides apply, negatives veto a look-alike."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.embedding.modelcard import load_card
from faceapp.recognition.decision import DecisionRule, OpenSetCalibration, calibrate_gallery
from faceapp.recognition.matching import Matcher


@pytest.fixture(scope="module")
def calibration() -> OpenSetCalibration:
    found = OpenSetCalibration.from_card(load_card().open_set)
    assert found is not None, "the shipped model card lacks its open_set section"
    return found


def test_tail_threshold_inverts_exceedance(calibration):
    tail = calibration.tail
    for q in (0.05, 0.01, 1e-3, 1e-4, 1e-6):
        t = tail.threshold(q)
        assert tail.exceedance(t) == pytest.approx(q, rel=0.02)
    scores = [tail.threshold(q) for q in (0.1, 0.01, 1e-3, 1e-5)]
    assert scores == sorted(scores)  # rarer -> higher


def test_gallery_threshold_rises_with_gallery_size(calibration):
    alpha = calibration.targets["balanced"]
    thresholds = [calibration.gallery_threshold(np.full(n, 3), alpha) for n in (1, 10, 100, 1000)]
    assert thresholds == sorted(thresholds) and thresholds[-1] > thresholds[0] + 0.05
    # The model predicts about the target at its own threshold (unless clipped at the floor).
    counts = np.full(100, 3)
    t = calibration.gallery_threshold(counts, alpha)
    assert calibration.expected_false_alarms(counts, t) == pytest.approx(alpha, rel=0.05)
    strict, lenient = (calibration.gallery_threshold(counts, calibration.targets[k]) for k in ("strict", "lenient"))
    assert strict > t > lenient
    with pytest.raises(ValueError):
        calibration.gallery_threshold(counts, 1.5)


def _unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_person_thresholds_fixed_cohort_and_override(calibration):
    rng = np.random.default_rng(3)
    people = 6
    centres = _unit(rng.normal(size=(people, 32)))
    centres[5] = _unit([centres[4] + 0.3 * rng.normal(size=32)])[0]  # 4 and 5 look alike
    embeddings = _unit(np.repeat(centres, 3, axis=0) + 0.05 * rng.normal(size=(people * 3, 32)))
    index = np.repeat(np.arange(people), 3)
    fixed = calibrate_gallery(calibration, embeddings, index, people, DecisionRule(fixed=0.42))
    assert fixed.gallery_threshold == pytest.approx(0.42) and np.allclose(fixed.thresholds, 0.42)
    assert fixed.target is None and fixed.expected_false_alarms is not None
    auto = calibrate_gallery(calibration, embeddings, index, people, DecisionRule("balanced"))
    base = auto.gallery_threshold
    assert auto.target == pytest.approx(0.01)
    assert auto.thresholds[4] > base and auto.thresholds[5] > base  # look-alikes get stricter thresholds
    assert np.all(auto.thresholds >= calibration.floor)
    # The model's own prediction for the thresholds it chose is the target, near enough.
    assert 0.003 < auto.expected_false_alarms < 0.03
    strict = calibrate_gallery(calibration, embeddings, index, people, DecisionRule("strict"))
    assert strict.gallery_threshold > base
    overrides = np.full(people, np.nan)
    overrides[2] = 0.6
    mine = calibrate_gallery(calibration, embeddings, index, people, DecisionRule("balanced"), overrides=overrides)
    assert mine.thresholds[2] == pytest.approx(0.6) and mine.automatic[2] == pytest.approx(auto.thresholds[2])
    assert mine.thresholds[0] == pytest.approx(auto.thresholds[0])
    with pytest.raises(ValueError):
        calibrate_gallery(None, embeddings, index, people, DecisionRule("balanced"))
    uncalibrated = calibrate_gallery(None, embeddings, index, people, DecisionRule("balanced"),
                                     preset_thresholds={"balanced": 0.4})
    assert np.allclose(uncalibrated.thresholds, 0.4) and uncalibrated.expected_false_alarms is None
    with pytest.raises(ValueError):
        DecisionRule("balanced", 0.4)


def test_per_person_thresholds_and_negative_veto():
    a, b, stranger = _unit(np.eye(3, 8) + 0.01)
    look_alike = _unit([a + 0.25 * stranger])[0]
    matcher = Matcher(np.stack([a, b]), np.array([0, 1]), ("Ann", "Bo"), np.array([0.3, 0.99], np.float32))
    near_bo = _unit([b + 0.2 * a])[0]  # about 0.98 against Bo, 0.2 against Ann
    ann, bo = matcher.match(np.stack([look_alike, near_bo]), unique=False)
    assert ann.name == "Ann"  # before: the look-alike is named Ann
    assert bo.name is None  # Bo's own, strict threshold
    vetoed = Matcher(np.stack([a, b]), np.array([0, 1]), ("Ann", "Bo"), 0.3,
                     negatives=look_alike[None], negative_index=np.array([0]))
    again, real = vetoed.match(np.stack([look_alike, a]), unique=False)
    assert again.name is None  # corrected once: "not Ann" for this face
    assert real.name == "Ann"  # Ann herself still recognised


def test_cohort_scores_match_a_brute_force_count():
    from faceapp.recognition.decision import cohort_scores

    rng = np.random.default_rng(1)
    for people, per_person in ((6, 3), (50, 2), (3, 1)):
        embeddings = _unit(rng.normal(size=(people * per_person, 32)))
        index = rng.permutation(np.repeat(np.arange(people), per_person))
        got = cohort_scores(embeddings, index, people + 1, top=20)
        similarity = embeddings @ embeddings.T
        for person in range(people):  # the mean of the 20 best others, each other's template scored by my best one
            best = similarity[index == person].max(axis=0)[index != person]
            assert got[person] == pytest.approx(np.sort(best)[-20:].mean(), abs=1e-6)
        assert np.isnan(got[people])  # nobody enrolled under that index
