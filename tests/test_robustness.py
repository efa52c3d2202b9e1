"""``faceapp eval robustness``: the degradations, the yaw estimate, the pair subset and an
end-to-end run on a few pairs of the shared LFW set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceapp.cli import main as cli
from faceapp.evaluation.degrade import (
    CONDITIONS,
    EYE_BAND_COLOUR,
    JPEG_QUALITY,
    MASK_COLOUR,
    SMALL_FACE_WIDTH,
    FaceRegion,
    degrade,
    disc_kernel,
    image_rng,
    line_kernel,
)
from faceapp.evaluation.images import DatasetError
from faceapp.evaluation.lfw_pairs import Pair
from faceapp.evaluation.robustness import RobustnessConfig, select_pairs
from faceapp.evaluation.robustness_embed import find_subject
from faceapp.types import Detection
from faceapp.vision.alignment import ARCFACE_TEMPLATE
from faceapp.vision.faces import FacePolicy
from faceapp.vision.pose import NOSE_DEPTH_RATIO, yaw_degrees

#: A face in a synthetic 200x200 picture: LFW's mean landmarks, scaled up.
LANDMARKS = np.array([[72.6, 83.1], [128.7, 81.8], [101.3, 117.2], [78.1, 144.3], [125.4, 143.3]], np.float32)
FACE = FaceRegion((40.0, 45.0, 120.0, 130.0), LANDMARKS)


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    """A textured BGR 200x200 image (gradient + noise), bright enough to darken."""
    rng = np.random.default_rng(5)
    ramp = np.linspace(60, 220, 200)[None, :, None]
    return np.clip(ramp + rng.normal(0, 25, (200, 200, 3)), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- degradations
@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_degradations_are_seeded_and_leave_the_input_alone(picture, condition) -> None:
    before = picture.copy()
    for severity in (1, 2, 3):
        first = degrade(picture, condition, severity, image_rng(3, condition, severity, "a.jpg"), FACE)
        again = degrade(picture, condition, severity, image_rng(3, condition, severity, "a.jpg"), FACE)
        assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
        np.testing.assert_array_equal(first, again)
        assert first.shape != picture.shape or (first != picture).any()
        if condition in ("low_light", "motion_blur"):  # random noise / angle: another image, another draw
            other = degrade(picture, condition, severity, image_rng(3, condition, severity, "b.jpg"), FACE)
            assert (other != first).any()
    np.testing.assert_array_equal(picture, before)


def test_image_rng_depends_on_every_part_of_its_key() -> None:
    draws = {tuple(image_rng(*key).integers(0, 2**31, 4)) for key in
             [(0, "jpeg", 1, "x"), (1, "jpeg", 1, "x"), (0, "mask", 1, "x"), (0, "jpeg", 2, "x"), (0, "jpeg", 1, "y")]}
    assert len(draws) == 5
    assert (image_rng(0, "jpeg", 1, "x").integers(0, 2**31, 4) == image_rng(0, "jpeg", 1, "x").integers(0, 2**31, 4)).all()


def test_degrade_refuses_bad_arguments(picture) -> None:
    rng = image_rng(0, "jpeg", 1, "x")
    for args in (("fog", 1), ("jpeg", 0), ("jpeg", 4)):
        with pytest.raises(ValueError):
            degrade(picture, *args, rng, FACE)
    with pytest.raises(ValueError):
        degrade(picture.astype(np.float32), "jpeg", 1, rng, FACE)


def test_low_light_darkens_more_at_each_severity(picture) -> None:
    means = [float(picture.mean())] + [
        float(degrade(picture, "low_light", s, image_rng(0, "low_light", s, "x"), FACE).mean()) for s in (1, 2, 3)
    ]
    assert means == sorted(means, reverse=True) and means[3] < 0.25 * means[0]


def test_blurs_are_normalised_and_smooth_more_at_each_severity(picture) -> None:
    for kernel in (line_kernel(9.0, 0.7), disc_kernel(4.0)):
        assert kernel.dtype == np.float32 and kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    horizontal = line_kernel(9.0, 0.0)
    assert np.count_nonzero(horizontal.sum(axis=1) > 1e-3) == 1  # one row: a horizontal line
    assert np.count_nonzero(horizontal.sum(axis=0) > 1e-3) in (9, 10, 11)  # ~9 px long
    disc = disc_kernel(4.0)
    assert disc[disc.shape[0] // 2].tolist().count(0.0) == 0 and disc[0, 0] == 0.0  # round, not square
    for condition in ("motion_blur", "defocus_blur"):
        sharpness = [cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var() for image in
                     [picture] + [degrade(picture, condition, s, image_rng(0, condition, s, "x"), FACE) for s in (1, 2, 3)]]
        assert sharpness == sorted(sharpness, reverse=True), (condition, sharpness)


def test_jpeg_uses_the_stated_quality(picture) -> None:
    sizes = []
    for severity, quality in zip((1, 2, 3), JPEG_QUALITY):
        out = degrade(picture, "jpeg", severity, image_rng(0, "jpeg", severity, "x"), FACE)
        _, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, quality])
        np.testing.assert_array_equal(out, cv2.imdecode(data, cv2.IMREAD_COLOR))
        sizes.append(len(data))
    assert sizes == sorted(sizes, reverse=True) and JPEG_QUALITY == (30, 20, 10)


def _at(image: np.ndarray, point) -> tuple[int, ...]:
    return tuple(int(v) for v in image[round(float(point[1])), round(float(point[0]))])


def test_the_occluders_cover_what_they_say(picture) -> None:
    eyes, nose, mouth = LANDMARKS[:2], LANDMARKS[2], (LANDMARKS[3] + LANDMARKS[4]) / 2
    covered = []
    for severity in (1, 2, 3):
        band = degrade(picture, "eye_band", severity, image_rng(0, "eye_band", severity, "x"), FACE)
        assert all(_at(band, eye) == EYE_BAND_COLOUR for eye in eyes) and _at(band, mouth) != EYE_BAND_COLOUR
        covered.append(int((band != picture).any(axis=2).sum()))
        masked = degrade(picture, "mask", severity, image_rng(0, "mask", severity, "x"), FACE)
        assert _at(masked, mouth) == MASK_COLOUR and all(_at(masked, eye) != MASK_COLOUR for eye in eyes)
        assert (_at(masked, nose) == MASK_COLOUR) == (severity >= 2), severity  # 0.55 of the way up: past the nose tip
    assert covered == sorted(covered) and covered[0] < covered[2]


def test_small_face_shrinks_the_image_to_the_face_width(picture) -> None:
    for severity, width in zip((1, 2, 3), SMALL_FACE_WIDTH):
        out = degrade(picture, "small_face", severity, image_rng(0, "small_face", severity, "x"), FACE)
        assert abs(FACE.width * out.shape[1] / picture.shape[1] - width) <= 0.5 * FACE.width / picture.shape[1] + 1e-6
    tiny = FaceRegion((0, 0, 20, 20), LANDMARKS / 5)
    np.testing.assert_array_equal(degrade(picture, "small_face", 1, image_rng(0, "small_face", 1, "x"), tiny), picture)


def test_small_face_on_real_photos_with_the_apps_detector(recognizer, fixtures_dir) -> None:
    """The detector finds the shrunk face at the width asked: within 2 px on an LFW-like
    crop; on the large fixture portraits YuNet reads such small faces up to ~3.6 px wide."""
    from faceapp.media.imageio import read_image

    for name in ("obama/obama_1.jpg", "biden/biden_2.jpg"):
        image = read_image(fixtures_dir / name)
        face = max(recognizer.detect(image), key=lambda d: d.area)
        x, y, w, h = face.box
        side = 1.55 * w  # an LFW-like crop around the face (LFW: a ~98 px box in 150 px)
        cx, cy = x + w / 2, y + h / 2
        matrix = np.array([[150 / side, 0, 75 - cx * 150 / side], [0, 150 / side, 75 - cy * 150 / side]])
        crop = cv2.warpAffine(image, matrix, (150, 150), flags=cv2.INTER_AREA)
        for source in (image, crop):
            found = max(recognizer.detect(source), key=lambda d: d.area)
            region = FaceRegion(found.box, found.landmarks)
            for severity, width in zip((1, 2, 3), SMALL_FACE_WIDTH):
                small = degrade(source, "small_face", severity, image_rng(0, "small_face", severity, name), region)
                measured = max(recognizer.detect(small), key=lambda d: d.area).box[2]
                low, high = (width - 2, width + 2) if source is crop else (width - 2, width + 4)
                assert low <= measured <= high, (name, source.shape, width, measured)


# ----------------------------------------------------------------------------------- pose
def _turned(yaw: float, roll: float = 0.0, scale: float = 50.0, shift=(300.0, 200.0)) -> np.ndarray:
    """The landmarks of a generic head (nose NOSE_DEPTH_RATIO eye distances in front of the
    eyes and mouth) turned by ``yaw`` degrees (positive: to the person's left, i.e. the
    nose toward the image's right), seen by a weak-perspective camera."""
    points = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.55, NOSE_DEPTH_RATIO], [-0.42, 1.15, 0.0], [0.42, 1.15, 0.0]])
    angle = math.radians(yaw)
    x = points[:, 0] * math.cos(angle) + points[:, 2] * math.sin(angle)
    flat = np.stack([x, points[:, 1]], axis=1)
    turn = math.radians(roll)
    rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    return (flat @ rotation.T * scale + np.array(shift)).astype(np.float32)


def _mirror(landmarks: np.ndarray, width: float = 640.0) -> np.ndarray:
    """The landmarks a detector gives on the mirrored image: x flipped, and the person's
    right and left swapped (YuNet labels by the image side)."""
    flipped = landmarks.copy()
    flipped[:, 0] = width - 1 - flipped[:, 0]
    return flipped[[1, 0, 2, 4, 3]]


def test_yaw_recovers_the_turn_of_a_model_head_and_its_sign() -> None:
    assert abs(yaw_degrees(ARCFACE_TEMPLATE)) < 1.0
    for yaw in (-40.0, -20.0, -5.0, 0.0, 10.0, 30.0, 45.0):
        assert yaw_degrees(_turned(yaw)) == pytest.approx(yaw, abs=1e-3)
        for roll in (-25.0, 15.0):  # a tilted head: the same yaw
            assert yaw_degrees(_turned(yaw, roll=roll, scale=20.0, shift=(50.0, 60.0))) == pytest.approx(yaw, abs=1e-3)
        assert yaw_degrees(_mirror(_turned(yaw))) == pytest.approx(-yaw, abs=1e-3)
    nose_right = _turned(30.0)
    assert nose_right[2, 0] > (nose_right[0, 0] + nose_right[1, 0]) / 2  # positive: the nose toward the image's right
    for bad in (np.zeros((4, 2)), np.full((5, 2), np.nan), np.zeros((5, 2))):
        with pytest.raises(ValueError):
            yaw_degrees(bad)


def test_yaw_on_real_photos(recognizer, fixtures_dir) -> None:
    from faceapp.media.imageio import read_image

    for name in ("obama/obama_1.jpg", "biden/biden_2.jpg"):  # frontal portraits
        (face,) = recognizer.detect(read_image(fixtures_dir / name))
        assert abs(yaw_degrees(face.landmarks)) < 10, name
    image = read_image(fixtures_dir / "obama/obama_2.jpg")  # turned to his right
    (face,) = recognizer.detect(image)
    (mirrored,) = recognizer.detect(cv2.flip(image, 1))
    assert yaw_degrees(face.landmarks) < -12 and yaw_degrees(mirrored.landmarks) > 12


# --------------------------------------------------------------------------- the protocol
def _pairs(folds: int = 3, per_class: int = 5) -> list[Pair]:
    return [Pair(f"a{f}_{k}.jpg", f"b{f}_{k}_{same}.jpg", same, f) for f in range(folds) for same in (True, False) for k in range(per_class)]


def test_select_pairs_is_stratified_and_seeded() -> None:
    pairs = _pairs()
    assert select_pairs(pairs, None, 0).tolist() == list(range(30))
    assert select_pairs(pairs, 99, 0).tolist() == list(range(30))
    chosen = select_pairs(pairs, 13, 4)
    assert len(chosen) == 13 and chosen.tolist() == sorted(chosen.tolist())
    counts = {}
    for row in chosen:
        counts[(pairs[row].fold, pairs[row].same)] = counts.get((pairs[row].fold, pairs[row].same), 0) + 1
    assert len(counts) == 6 and set(counts.values()) == {2, 3}
    assert (select_pairs(pairs, 13, 4) == chosen).all() and (select_pairs(pairs, 13, 5) != chosen).any()
    with pytest.raises(DatasetError, match="too few"):
        select_pairs(pairs, 5, 0)


def test_config_validation() -> None:
    RobustnessConfig().validate()
    for bad in (RobustnessConfig(conditions=("fog",)), RobustnessConfig(conditions=()), RobustnessConfig(severities=(0,)),
                RobustnessConfig(pairs=0), RobustnessConfig(batch_size=0)):
        with pytest.raises(ValueError):
            bad.validate()


def test_find_subject_returns_the_picked_box_in_original_pixels() -> None:
    image = np.zeros((100, 100, 3), np.uint8)

    def detect(resized: np.ndarray) -> list[Detection]:
        if resized.shape[0] == 100:
            return []  # found only at 2x
        scale = resized.shape[0] / 100
        near, far = (30, 30, 40, 40), (0, 0, 20, 20)
        return [Detection(tuple(v * scale for v in box), np.tile(np.array(box[:2], np.float32) * scale, (5, 1)), 0.9) for box in (far, near)]

    found, box = find_subject(detect, image, FacePolicy(scales=(1.0, 2.0)))
    assert found.detected and box == pytest.approx((29.75, 29.75, 40.0, 40.0))  # pixel centres: (x + 0.5) / 2 - 0.5
    _, none = find_subject(lambda resized: [], image, FacePolicy())
    assert none is None


def test_the_pipeline_embeds_as_eval_lfw_does(recognizer, lfw_dir: Path) -> None:
    from faceapp.evaluation.images import embed_images
    from faceapp.evaluation.robustness_embed import FaceAppPipeline
    from faceapp.media.imageio import read_image

    paths = sorted((lfw_dir / "images").glob("Aaron_*.jpg"))[:3]
    batch = FaceAppPipeline(recognizer, FacePolicy()).embed([read_image(p) for p in paths])
    expected = embed_images(recognizer, paths, FacePolicy(), flip=False)
    np.testing.assert_allclose(batch.embeddings, expected.plain, atol=1e-6)
    assert (batch.detected == expected.detected).all() and batch.usable.all()
    assert np.isfinite(batch.boxes).all() and batch.landmarks.shape == (3, 5, 2)


def test_the_cli_parses_robustness_options() -> None:
    args = cli.build_parser().parse_args(["eval", "robustness", "/lfw", "--pairs", "40", "--conditions", "jpeg,mask,jpeg",
                                          "--severities", "3,1", "--seed", "7", "--no-reference"])
    assert (args.data_dir, args.pairs, args.conditions, args.severities, args.seed, args.reference) == (
        "/lfw", 40, ("jpeg", "mask"), (1, 3), 7, False)
    assert args.func.__name__ == "cmd_eval_robustness" and args.conditions != tuple(CONDITIONS)
    for bad in (["--conditions", "fog"], ["--severities", "4"], ["--severities", "x"], ["--pairs", "0"]):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(["eval", "robustness", *bad])


def test_end_to_end_on_lfw(lfw_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "robustness"
    argv = ["eval", "robustness", str(lfw_dir), "--pairs", "40", "--conditions", "jpeg,low_light", "--severities", "1",
            "--out", str(out), "--json", "-q"]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"]["pairs"] == 40 and report["dataset"]["folds"] == 10
    assert [(row["condition"], row["severity"]) for row in report["rows"]] == [("clean", 0), ("jpeg", 1), ("low_light", 1)]
    pipelines = report["pipelines"]
    assert pipelines[0] == "faceapp" and set(pipelines) <= {"faceapp", "opencv"}
    for row in report["rows"]:
        for name in pipelines:
            figures = row[name]
            assert 0.5 <= figures["accuracy_mean"] <= 1.0 and len(figures["fold_accuracies"]) == 10
            assert 0.0 <= figures["tar_at_far_1e-3"] <= 1.0 and 0 <= figures["no_face"] <= figures["images"]
            assert set(figures["at_clean_thresholds"]) == {"accuracy", "threshold_at_far_1e-3", "tar", "far"}
    assert report["rows"][1]["faceapp"]["images"] == report["dataset"]["second_images"] <= 40
    bins = report["pose"]["bins"]
    assert [b["low"] for b in bins] == [0, 10, 20, 35] and sum(b["pairs"] for b in bins) + report["pose"]["unknown_pairs"] == 40
    assert list(report["conditions"]) == ["jpeg", "low_light"] and report["conditions"]["jpeg"] == {"1": "quality 30"}
    assert json.loads((out / "report.json").read_text())["rows"] == report["rows"]
    assert (out / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = (out / "pair_scores.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["left", "right", "same", "fold", "yaw_left", "yaw_right"] and "faceapp:jpeg/1" in header
    # The quality section pools the 3 runs' 40 pairs; discarding nothing leaves every pair,
    # and the per-pair views saved beside it hold every pair's measurements.
    quality = report["quality"]
    assert quality["pairs"] == 120 and set(quality["discard"]) == {"detector", "enrollment", "size_blur_pose_exposure", "detector_x_size"}
    for curve in quality["discard"].values():
        assert [p["discarded"] for p in curve] == [0.0, 0.05, 0.1, 0.2, 0.3] and curve[0]["kept"] == 1.0
        assert [round(p["kept"], 2) for p in curve] == [1.0, 0.95, 0.9, 0.8, 0.7]
    assert [g["kept"] for g in quality["gates"]] == sorted((g["kept"] for g in quality["gates"]), reverse=True)
    views = np.load(out / "quality_pairs.npz")
    assert views["left"].shape == views["right"].shape == (120, 6) and list(views["measures"])[-1] == "detector_score"
    assert np.isfinite(views["right"][:40]).all() or np.isnan(views["right"][:40]).any(axis=1).sum() <= 2
    # Without the reference (its ONNX absent): the table and the plot leave its columns out.
    from faceapp.evaluation.robustness_report import format_robustness_table, plot_robustness

    alone = {**report, "pipelines": ["faceapp"]}
    table = format_robustness_table(alone)
    assert "OpenCV" not in table and "low_light" in table and "yaw difference" in table
    assert "error versus discard" in table and "minimum detector confidence" in table
    assert plot_robustness(alone, tmp_path / "alone.png").stat().st_size > 1000
