"""The view-quality score, its error-versus-discard measurement, and the choice of
templates that add most (pose-diverse enrollment's core, without Qt)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from faceapp.evaluation.robustness_embed import MEASURES
from faceapp.evaluation.robustness_quality import DISCARD_FRACTIONS, PooledPairs, candidate_scores, quality_section
from faceapp.recognition.enroll_poses import INSTRUCTIONS, TOO_FAR, TURN_MORE, PoseCapture, pose_problem
from faceapp.recognition.template_selection import select_templates
from faceapp.vision.quality import (
    JUDGE_MIN_CONFIDENCE,
    QUALITY_RAMP,
    QualityConfig,
    assess,
    confidence_quality,
    exposure_factor,
    judged,
    quality_scores,
    view_quality,
)
from tests.unit_vectors import near, unit


def test_the_enrollment_score_falls_with_each_poor_measure():
    assert float(quality_scores(200, 400, 0.0, 1.0)) == 1.0
    assert quality_scores(40, 400, 0.0, 1.0) == pytest.approx(40 / 160)  # small
    assert quality_scores(200, 40, 0.0, 1.0) == pytest.approx(0.25)  # blurred
    assert quality_scores(200, 400, 0.35, 1.0) == pytest.approx(0.5)  # turned
    assert quality_scores(200, 400, 0.0, 0.9) == pytest.approx(0.9)  # unsure detector
    assert quality_scores(200, 400, 0.8, 1.0) == 0.0
    arrays = quality_scores(np.array([40, 200]), np.array([400, 400]), np.zeros(2), np.ones(2))
    assert arrays.shape == (2,) and arrays[1] == 1.0
    assert exposure_factor(120) == 1.0 and exposure_factor(25) == pytest.approx(0.5) and exposure_factor(235) == pytest.approx(0.5)


def test_a_views_quality_is_its_detector_confidence_on_the_ramp(recognizer, fixtures_dir):
    import cv2

    from faceapp.media.imageio import read_image

    low, high = QUALITY_RAMP
    assert confidence_quality([low - 0.1, low, (low + high) / 2, high, 1.0]).tolist() == pytest.approx([0, 0, 0.5, 1, 1])
    image = read_image(fixtures_dir / "biden" / "biden_1.jpg")
    face = recognizer.align(image, recognizer.detect(image))[0]
    assert view_quality(face.detection) == pytest.approx(float(confidence_quality(face.detection.score)))
    assert judged(face.detection) and not judged(dataclasses.replace(face.detection, score=JUDGE_MIN_CONFIDENCE - 0.01))
    # The enrollment checks see what a user can fix.
    report = assess(face.image, face.detection)
    assert report.ok and 0.0 < report.score <= 1.0
    dark = (face.image * 0.15).astype(np.uint8)
    assert "too dark" in assess(dark, face.detection, QualityConfig()).problems
    blurred = cv2.GaussianBlur(face.image, (0, 0), 4)
    assert "hold still (image is blurred)" in assess(blurred, face.detection).problems
    assert assess(blurred, face.detection).score < 0.5 * report.score


def _pooled(quality_right: np.ndarray, wrong: np.ndarray) -> PooledPairs:
    """Same-person pairs, all clean on the left; ``wrong`` ones score below every threshold;
    the right views' detector confidence is ``quality_right``."""
    count = len(wrong)
    left = np.tile(np.array([[200, 400, 120, 0.0, 400, 1.0]], np.float32), (count, 1))
    right = left.copy()
    right[:, MEASURES.index("detector_score")] = quality_right
    scores = np.where(wrong, 0.1, 0.8)
    return PooledPairs(scores, np.ones(count, bool), np.full(count, 0.4), 0.5, left, right)


def test_discarding_by_a_score_that_knows_lowers_the_errors():
    rng = np.random.default_rng(0)
    quality = 0.8 + 0.2 * rng.random(1000)
    wrong = quality < 0.82  # the poorest tenth is exactly the errors
    section = quality_section(_pooled(quality, wrong))
    assert set(section["discard"]) == {"detector", "enrollment", "size_blur_pose_exposure", "detector_x_size"}
    curve = section["discard"]["detector"]
    assert curve[0]["fnmr"] == pytest.approx(wrong.mean()) and curve[0]["kept"] == 1.0
    assert curve[DISCARD_FRACTIONS.index(0.1)]["fnmr"] < 0.01 and curve[-1]["fnmr"] == 0.0
    gate = next(g for g in section["gates"] if g["gate"] == 0.85)
    assert gate["kept"] == pytest.approx((quality >= 0.85).mean(), abs=0.01) and gate["fnmr"] == 0.0


def test_a_score_that_knows_nothing_changes_nothing():
    rng = np.random.default_rng(1)
    quality = 0.8 + 0.2 * rng.random(4000)
    wrong = rng.random(4000) < 0.2  # errors unrelated to quality
    curve = quality_section(_pooled(quality, wrong))["discard"]["detector"]
    assert all(abs(p["fnmr"] - wrong.mean()) < 0.03 for p in curve)


def test_undetected_views_score_zero():
    measures = np.full((2, len(MEASURES)), np.nan, np.float32)
    measures[0] = [200, 400, 120, 0.0, 400, 1.0]
    scores = candidate_scores(measures)
    assert scores["detector"][0] == 1.0 and scores["enrollment"][0] == 1.0
    assert all(values[1] == 0.0 for values in scores.values())


# --------------------------------------------------------------------------- selection
def test_the_templates_kept_cover_every_cluster_of_views():
    rng = np.random.default_rng(2)
    centres = unit(rng.normal(size=(3, 128)))
    # 6 near-copies of view A, 2 of B, 2 of C: the best-quality three would all be A's.
    candidates = np.concatenate([near(np.repeat(centres[:1], 6, 0), 0.95, rng), near(np.repeat(centres[1:2], 2, 0), 0.95, rng),
                                 near(np.repeat(centres[2:], 2, 0), 0.95, rng)])
    chosen = select_templates(candidates, 3)
    assert sorted({0 if i < 6 else 1 if i < 8 else 2 for i in chosen}) == [0, 1, 2]
    assert chosen[0] < 6  # the most representative view first
    # A candidate that counts for nothing is only kept when nothing else is left.
    weights = np.ones(10)
    weights[6:8] = 0.0
    assert all(not 6 <= i < 8 for i in select_templates(candidates, 2, weights=weights))


def test_groups_keep_and_limits():
    rng = np.random.default_rng(3)
    centre = unit(rng.normal(size=(1, 64)))
    candidates = near(np.repeat(centre, 6, 0), 0.9, rng)
    groups = ["frontal"] * 4 + ["left", "right"]
    chosen = select_templates(candidates, 3, groups=groups)
    assert sorted(groups[i] for i in chosen) == ["frontal", "left", "right"]
    assert select_templates(candidates, 3, keep=[5, 5])[:1] == [5] and len(select_templates(candidates, 3, keep=[5])) == 3
    assert select_templates(candidates, 9) == list(range(6))
    assert select_templates(candidates, 9, keep=[4]) == [4, 0, 1, 2, 3, 5]
    for bad in ({"count": 0}, {"count": 2, "keep": [0, 1, 2]}, {"count": 2, "keep": [6]}, {"count": 2, "weights": np.ones(5)}):
        with pytest.raises(ValueError):
            select_templates(candidates, **bad)


def test_pose_problems_by_yaw():
    assert pose_problem(3.0, "frontal") is None and pose_problem(-14.0, "frontal") == INSTRUCTIONS["frontal"]
    assert pose_problem(20.0, "left") is None and pose_problem(-20.0, "right") is None
    assert pose_problem(5.0, "left") == TURN_MORE["left"] and pose_problem(20.0, "right") == TURN_MORE["right"]
    assert pose_problem(50.0, "left") == TOO_FAR
    with pytest.raises(ValueError):
        pose_problem(0.0, "up")


def test_pose_capture_plans_offers_and_keeps_one_of_each_pose(recognizer, fixtures_dir):
    from faceapp.recognition.enrollment import samples_from_files

    samples = samples_from_files(recognizer, sorted((fixtures_dir / "obama").glob("*.jpg"))[:3])
    capture = PoseCapture([None] * 5, [None] * 5)
    assert capture.plan == [("frontal", 3), ("left", 3), ("right", 3)] and capture.pose == "frontal"
    assert capture.offer(samples[0], 30.0) == INSTRUCTIONS["frontal"] and capture.progress == (1, 3, 0, 3)
    yaws = {"frontal": 0.0, "left": 20.0, "right": -20.0}
    while not capture.done:
        pose = capture.pose
        assert capture.offer(samples[len(capture.candidates) % 3], yaws[pose]) is None
    slots, poses = capture.finish()
    assert all(s is not None for s in slots) and sorted(set(poses)) == ["frontal", "left", "right"]
    with pytest.raises(RuntimeError):
        capture.offer(samples[0], 0.0)
    # A retake of two slots asks again for their poses only; the other slots stay as they were.
    slots[1] = slots[3] = None
    retake = PoseCapture(slots, poses)
    assert [pose for pose, _ in retake.plan] == list(dict.fromkeys([poses[1], poses[3]]))
    while not retake.done:
        retake.offer(samples[0], yaws[retake.pose])
    again, _ = retake.finish()
    assert all(again[i] is slots[i] for i in (0, 2, 4)) and again[1] is not None and again[3] is not None
    assert PoseCapture([None], [None]).plan == [("frontal", 2)]
    with pytest.raises(ValueError):
        PoseCapture(again, poses)  # nothing to capture
