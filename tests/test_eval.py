"""Tests of the evaluation commands (faceapp.evaluation.lfw, .ident, .commands).

Fast tests use fake detectors/embedders and synthetic embeddings; the end-to-end tests
run the real pipeline on a tiny LFW-layout dataset made from the shared face fixtures
(``FACEAPP_FIXTURES``, default ``<repo>/../shared/fixtures/faces``). Those are skipped
when the fixtures are missing, and fail instead when ``CI=true``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from faceapp.cli import main as cli
from faceapp.embedding.flip import embed_with_flip, fuse
from faceapp.evaluation.ident import (
    IdentConfig,
    Split,
    discover_people,
    evaluate_split,
    make_split,
    person_of,
    run_ident,
    stranger_groups,
)
from faceapp.evaluation.images import DatasetError
from faceapp.evaluation.lfw import load_lfw, run_lfw
from faceapp.evaluation.report import format_lfw_table
from faceapp.evaluation.verification import pair_scores, verification_result
from faceapp.types import Detection
from faceapp.vision.boxes import box_iou
from faceapp.vision.faces import LFW_CENTRE_LANDMARKS, FacePolicy, centre_landmarks, detect_at_scale, find_face, pick_detection

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- helpers
def _detection(x: float, y: float, w: float, h: float, score: float = 0.9) -> Detection:
    """A detection whose landmarks sit at fixed fractions of its box."""
    landmarks = (np.array([x, y], np.float32) + LFW_CENTRE_LANDMARKS.astype(np.float32) * np.array([w, h], np.float32))
    return Detection(box=(x, y, w, h), landmarks=landmarks.astype(np.float32), score=score)


class FakeEmbedder:
    """``embed``: the mean BGR colour of the left and right halves, plus a constant,
    normalised; so mirroring a face changes its embedding predictably."""

    dim = 7

    def embed(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces, np.float32)
        half = faces.shape[2] // 2
        raw = np.concatenate([faces[:, :, :half].mean(axis=(1, 2)), faces[:, :, half:].mean(axis=(1, 2)), np.ones((len(faces), 1))], axis=1)
        return (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)


def _run_cli(argv: list[str]) -> int:
    """The real command line (``faceapp.cli.main.main``), errors printed as one line."""
    from faceapp.cli import main as cli

    return cli.main(argv)


# ----------------------------------------------------------------------- face finding
def test_pick_detection_centre_and_largest() -> None:
    near_centre = _detection(50, 50, 40, 40)
    big_corner = _detection(0, 0, 70, 70)
    assert pick_detection([big_corner, near_centre], 150, 150, "centre") is near_centre
    assert pick_detection([big_corner, near_centre], 150, 150, "largest") is big_corner
    with pytest.raises(ValueError):
        pick_detection([], 150, 150)
    with pytest.raises(ValueError):
        pick_detection([near_centre], 150, 150, "leftmost")


def test_box_iou() -> None:
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def test_centre_landmarks_scale_with_the_image() -> None:
    np.testing.assert_allclose(centre_landmarks(150, 150), LFW_CENTRE_LANDMARKS * 150, atol=1e-4)
    points = centre_landmarks(300, 150)
    np.testing.assert_allclose(points[:, 0], LFW_CENTRE_LANDMARKS[:, 0] * 300, atol=1e-3)
    assert points.dtype == np.float32 and points.shape == (5, 2)


def test_detect_at_scale_maps_back_to_the_original_pixels() -> None:
    image = np.zeros((100, 120, 3), np.uint8)
    seen = []

    def detect(resized: np.ndarray) -> list[Detection]:
        seen.append(resized.shape)
        # A face at pixel-centre coordinates (39.5, 19.5) in the 2x image <-> (19.5, 9.5) - 0.25...
        return [_detection(39.5, 19.5, 60, 80)]

    (mapped,) = detect_at_scale(detect, image, 2.0)
    assert seen == [(200, 240, 3)]
    # x_original + 0.5 = (x_resized + 0.5) / 2
    assert mapped.box == pytest.approx((19.5, 9.5, 30.0, 40.0))
    expected = (_detection(39.5, 19.5, 60, 80).landmarks + 0.5) / 2 - 0.5
    np.testing.assert_allclose(mapped.landmarks, expected, atol=1e-5)
    assert detect_at_scale(detect, image, 1.0)[0].box == (39.5, 19.5, 60, 80)


def test_find_face_averages_the_scales_and_falls_back() -> None:
    image = np.zeros((150, 150, 3), np.uint8)
    face = _detection(30, 30, 90, 90)

    def detect(resized: np.ndarray) -> list[Detection]:
        scale = resized.shape[0] / 150
        # The same face at every scale, its landmarks 1 px (original) apart.
        shifted = face.landmarks * scale + (scale - 1.0) * scale
        return [Detection((30 * scale, 30 * scale, 90 * scale, 90 * scale), shifted.astype(np.float32), 0.9)]

    found = find_face(detect, image, FacePolicy(scales=(1.0, 2.0)))
    assert found.detected and found.face_count == 1
    single = find_face(detect, image, FacePolicy(scales=(1.0,)))
    two_x = find_face(detect, image, FacePolicy(scales=(2.0,)))
    np.testing.assert_allclose(found.landmarks, (single.landmarks + two_x.landmarks) / 2, atol=1e-5)

    def nothing(resized: np.ndarray) -> list[Detection]:
        return []

    centre = find_face(nothing, image, FacePolicy(no_face="centre"))
    assert not centre.detected
    np.testing.assert_allclose(centre.landmarks, centre_landmarks(150, 150))
    assert find_face(nothing, image, FacePolicy(no_face="skip")).landmarks is None


def test_find_face_ignores_a_different_face_at_another_scale() -> None:
    image = np.zeros((150, 150, 3), np.uint8)

    def detect(resized: np.ndarray) -> list[Detection]:
        if resized.shape[0] == 150:
            return [_detection(40, 40, 70, 70)]
        return [_detection(0, 0, 40, 40)]  # at 2x: only some other, far-away face

    found = find_face(detect, image, FacePolicy(scales=(1.0, 2.0)))
    np.testing.assert_allclose(found.landmarks, _detection(40, 40, 70, 70).landmarks)


@pytest.mark.parametrize(
    "policy",
    [FacePolicy(scales=()), FacePolicy(scales=(0.5,)), FacePolicy(pick="left"), FacePolicy(no_face="guess")],
)
def test_face_policy_validation(policy: FacePolicy) -> None:
    with pytest.raises(ValueError):
        policy.validate()


# --------------------------------------------------------------------------- embedding
def test_embed_with_flip_is_the_normalised_sum() -> None:
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    embedder = FakeEmbedder()
    fused = embed_with_flip(embedder, faces)
    plain, mirror = embedder.embed(faces), embedder.embed(faces[:, :, ::-1])
    expected = (plain + mirror) / np.linalg.norm(plain + mirror, axis=1, keepdims=True)
    np.testing.assert_allclose(fused, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-6)
    # A mirror-symmetric face: fusion changes nothing.
    symmetric = np.concatenate([faces[:, :, :56], faces[:, :, :56][:, :, ::-1]], axis=2)
    np.testing.assert_allclose(embed_with_flip(embedder, symmetric), embedder.embed(symmetric), atol=1e-6)
    np.testing.assert_allclose(fuse(plain, plain), plain, atol=1e-6)


# ------------------------------------------------------------------------ verification
def test_pair_scores_and_the_reject_policy() -> None:
    embeddings = np.array([[1, 0], [0.6, 0.8], [0, 1], [0, 0]], np.float32)
    usable = np.array([True, True, True, False])
    scores = pair_scores(embeddings, np.array([0, 0, 1, 3]), np.array([1, 2, 2, 0]), usable)
    np.testing.assert_allclose(scores, [0.6, 0.0, 0.8, -1.0], atol=1e-6)


def test_verification_result_on_a_toy_set() -> None:
    # Same toy set as test_metrics: genuine 9 8 6 4, impostor 7 5 3 2 (scaled to 0.1).
    scores = np.array([9, 8, 6, 4, 7, 5, 3, 2]) / 10
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    folds = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    result = verification_result(scores, labels, folds, app_threshold=0.55)
    assert result.curve.auc == pytest.approx(13 / 16)
    assert result.app_accuracy == pytest.approx(6 / 8)  # accepts 9 8 6 7: 3 + 3 correct
    assert (result.app_tar, result.app_far) == (pytest.approx(3 / 4), pytest.approx(1 / 4))
    report = result.to_json()
    assert set(report["tar_at_far"]) == {"0.01", "0.001"}
    assert report["presets"]["balanced"] == pytest.approx(result.best_threshold, abs=1e-4)
    # At FAR 0.01 and 0.001 no impostor may pass: threshold = 0.8 (above impostor 0.7).
    assert report["presets"]["strict"] == pytest.approx(0.8)
    assert report["presets"]["lenient"] == pytest.approx(0.8)
    json.dumps(report)


# ---------------------------------------------------------------------- identification
def test_person_of_and_discover_people_layouts(tmp_path: Path) -> None:
    assert person_of(Path("George_W_Bush_0012.jpg")) == "George_W_Bush"
    assert person_of(Path("alice-3.png")) == "alice"
    assert person_of(Path("portrait.jpg")) == "portrait"

    flat = tmp_path / "flat"
    (flat / "images").mkdir(parents=True)
    for name in ("Ann_Lee_0002.jpg", "Ann_Lee_0001.jpg", "Bo_0001.jpg", "notes.txt"):
        (flat / "images" / name).write_bytes(b"")
    people = discover_people(flat)
    assert list(people) == ["Ann_Lee", "Bo"]
    assert [p.name for p in people["Ann_Lee"]] == ["Ann_Lee_0001.jpg", "Ann_Lee_0002.jpg"]

    folders = tmp_path / "folders"
    for person, files in {"zoe": ["b.jpg", "a.jpg"], "adam": ["x.png"], "empty": []}.items():
        (folders / person).mkdir(parents=True)
        for name in files:
            (folders / person / name).write_bytes(b"")
    people = discover_people(folders)
    assert list(people) == ["adam", "zoe"]
    assert [p.name for p in people["zoe"]] == ["a.jpg", "b.jpg"]

    with pytest.raises(DatasetError):
        discover_people(tmp_path / "missing")
    (tmp_path / "none").mkdir()
    with pytest.raises(DatasetError):
        discover_people(tmp_path / "none")


def test_stranger_groups_are_deterministic_and_folds_partition() -> None:
    names = [f"p{i}" for i in range(10)]
    one = stranger_groups(names, IdentConfig(strangers=0.3, seed=4))
    assert len(one) == 1 and len(one[0]) == 3
    assert one == stranger_groups(names, IdentConfig(strangers=0.3, seed=4))
    assert stranger_groups(names, IdentConfig(strangers=2, seed=4))[0] <= set(names)
    folds = stranger_groups(names, IdentConfig(folds=3, seed=1))
    assert [len(f) for f in folds] == [4, 3, 3]
    assert set().union(*folds) == set(names) and sum(len(f) for f in folds) == 10
    with pytest.raises(DatasetError):
        stranger_groups(names, IdentConfig(strangers=10))
    for bad in (IdentConfig(enroll=0), IdentConfig(strangers=0), IdentConfig(strangers=2.5), IdentConfig(folds=1)):
        with pytest.raises(ValueError):
            bad.validate()


def test_make_split() -> None:
    people = {"a": [0, 1, 2], "b": [3, 4], "c": [5, 6, 7, 8], "d": [9]}
    split = make_split(people, enroll=2, strangers={"d", "b"})
    assert split.gallery.tolist() == [0, 1, 5, 6]
    assert split.gallery_labels.tolist() == ["a", "a", "c", "c"]
    assert split.probes.tolist() == [2, 3, 4, 7, 8, 9]
    assert split.probe_known.tolist() == [True, False, False, True, True, False]
    assert (split.known_people, split.stranger_people, split.unused_people) == (2, 2, 0)
    assert make_split(people, enroll=3, strangers={"d"}).unused_people == 2
    # A stranger without any usable image is unused, not a stranger.
    emptied = make_split({**people, "e": []}, enroll=2, strangers={"e", "d"})
    assert (emptied.known_people, emptied.stranger_people, emptied.unused_people) == (2, 1, 2)


def test_evaluate_split_hand_computed() -> None:
    # 2-D unit embeddings at angles; templates of a at 0 deg, of b at 90 deg.
    def at(degrees: float) -> list[float]:
        return [np.cos(np.radians(degrees)), np.sin(np.radians(degrees))]

    embeddings = np.array([at(0), at(90), at(10), at(80), at(30), at(45), at(60)], np.float32)
    split = Split(
        gallery=np.array([0, 1]), gallery_labels=np.array(["a", "b"], dtype=object),
        probes=np.array([2, 3, 4, 5, 6]), probe_labels=np.array(["a", "b", "b", "x", "y"], dtype=object),
        probe_known=np.array([True, True, True, False, False]),
        known_people=2, stranger_people=2, unused_people=0,
    )
    # Best scores: cos10=.985 (a, right), cos10 (b, right), cos30=.866 (a, wrong), cos45=.707, cos30=.866.
    result = evaluate_split(embeddings, split, threshold=0.8, presets={"strict": 0.9, "lenient": 0.8})
    assert result.rank1 == pytest.approx(2 / 3)
    # At 0.8: accepted = probes 2, 3, 4, 6 -> known precision 3/4, recall 3/3.
    assert result.precision == pytest.approx(0.75) and result.recall == pytest.approx(1.0)
    assert result.f1 == pytest.approx(2 * 0.75 / 1.75)
    assert result.dir_at_threshold == pytest.approx(2 / 3)
    assert result.false_alarm_rate == pytest.approx(0.5)
    assert result.at_presets["lenient"]["dir"] == result.dir_at_threshold
    # At 0.9 only the two cos10 probes (both right) are named: DIR 2/3, no false alarm.
    strict = result.at_presets["strict"]
    assert (strict["dir"], strict["false_alarm_rate"], strict["precision"]) == (pytest.approx(2 / 3), 0.0, 1.0)
    # FAR 1%: no stranger may pass (best stranger .866): the threshold is above .866 -> DIR 2/3.
    rate, threshold = result.dir_at_far[0.01]
    assert rate == pytest.approx(2 / 3) and threshold > 0.866
    bad = Split(split.gallery, split.gallery_labels, split.probes[:3], split.probe_labels[:3], split.probe_known[:3], 2, 0, 0)
    with pytest.raises(DatasetError):
        evaluate_split(embeddings, bad, 0.5)


# ------------------------------------------------------------------------------- CLI
def test_register_builds_the_eval_commands() -> None:
    args = cli.build_parser().parse_args(["eval", "lfw", "/data", "--no-flip", "--scales", "1,3", "--json", "--threshold", "0.4"])
    assert args.command == "eval" and args.eval_command == "lfw"
    assert args.data_dir == "/data" and args.flip is False and args.scales == (1.0, 3.0) and args.json
    assert args.threshold == "0.4" and args.det_score == 0.8 and callable(args.func)
    args = cli.build_parser().parse_args(["eval", "ident", "/data", "-k", "3", "--folds", "5", "--seed", "7"])
    assert (args.enroll, args.folds, args.seed, args.strangers, args.flip) == (3, 5, 7, 0.2, False)
    for bad in (["eval", "lfw", "--scales", "0.5"], ["eval", "ident", "/d", "--strangers", "2.5"], ["eval"]):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(bad)


def test_cli_reports_a_missing_dataset_as_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli(["eval", "lfw", str(tmp_path / "nowhere")]) == 1
    assert "LFW folder not found" in capsys.readouterr().err
    (tmp_path / "images").mkdir()
    (tmp_path / "pairs.txt").write_text("1 1\nA 1 2\nA 1 B 1\n")
    with pytest.raises(DatasetError, match="3 image"):
        load_lfw(tmp_path)
    (tmp_path / "pairs.txt").write_text("1 1\nA 1\n")
    with pytest.raises(DatasetError, match="line"):
        load_lfw(tmp_path)


def test_the_real_cli_registers_eval_when_wired() -> None:
    from faceapp.cli import main as cli

    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert "eval" in commands.choices
    args = parser.parse_args(["eval", "lfw", "--no-flip"])
    assert args.func.__name__ == "cmd_eval_lfw"


# ----------------------------------------------------------------- end to end (fixtures)
def _fixtures_dir() -> Path:
    override = os.environ.get("FACEAPP_FIXTURES")
    return Path(override) if override else REPO.parent / "shared" / "fixtures" / "faces"


@pytest.fixture(scope="module")
def fixture_photos() -> dict[str, list[Path]]:
    root = _fixtures_dir()
    photos = {name: sorted((root / name).glob("*.jpg")) for name in ("obama", "biden")}
    if len(photos["obama"]) < 4 or len(photos["biden"]) < 2:
        reason = f"face fixtures not found at {root} (need obama/*.jpg x4, biden/*.jpg x2); set FACEAPP_FIXTURES"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return photos


@pytest.fixture(scope="module")
def recognizer(fixture_photos: dict[str, list[Path]]):
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer

    return Recognizer.create(PipelineConfig())


@pytest.fixture(scope="module")
def tiny_lfw(tmp_path_factory: pytest.TempPathFactory, fixture_photos: dict[str, list[Path]], recognizer) -> Path:
    """An LFW-layout folder: 150x150 crops centred on each fixture face (about LFW's
    framing), and a 2-fold pairs file with 2 same + 2 different pairs per fold."""
    import cv2

    from faceapp.media.imageio import read_image

    root = tmp_path_factory.mktemp("tiny_lfw")
    (root / "images").mkdir()
    for person, label in (("obama", "Barack_Obama"), ("biden", "Joe_Biden")):
        for number, path in enumerate(fixture_photos[person], 1):
            image = read_image(path)
            face = max(recognizer.detect(image), key=lambda d: d.area)
            x, y, w, h = face.box
            side = 1.6 * max(w, h)
            cx, cy = x + w / 2, y + h / 2
            matrix = np.array([[150 / side, 0, 75 - cx * 150 / side], [0, 150 / side, 75 - cy * 150 / side]])
            crop = cv2.warpAffine(image, matrix, (150, 150), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
            cv2.imwrite(str(root / "images" / f"{label}_{number:04d}.jpg"), crop)
    (root / "pairs.txt").write_text(
        "2\t2\n"
        "Barack_Obama\t1\t2\nJoe_Biden\t1\t2\nBarack_Obama\t1\tJoe_Biden\t1\nBarack_Obama\t2\tJoe_Biden\t2\n"
        "Barack_Obama\t3\t4\nBarack_Obama\t1\t3\nBarack_Obama\t3\tJoe_Biden\t1\nBarack_Obama\t4\tJoe_Biden\t2\n"
    )
    return root


def test_lfw_end_to_end(tiny_lfw: Path, recognizer, tmp_path: Path) -> None:
    report = run_lfw(recognizer, load_lfw(tiny_lfw), out_dir=tmp_path / "out", flip=True)
    assert report["dataset"]["pairs"] == 8 and report["dataset"]["folds"] == 2 and report["dataset"]["images"] == 6
    assert report["faces"]["images"] == 6
    assert report["faces"]["detected"] + report["faces"]["no_face"] == 6
    assert report["faces"]["no_face_policy"] == "centre"
    assert set(report["results"]) == {"plain", "flip"}
    for result in report["results"].values():
        assert len(result["fold_accuracies"]) == 2
        assert 0.0 <= result["accuracy_mean"] <= 1.0 and result["auc"] is not None
        assert set(result["presets"]) == {"strict", "balanced", "lenient"}
    assert report["best_mode"] in ("plain", "flip")
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert written["results"] == report["results"]
    assert (tmp_path / "out" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (tmp_path / "out" / "pair_scores.csv").read_text().splitlines()
    assert rows[0] == "left,right,same,fold,plain,flip" and len(rows) == 9
    assert "accuracy" in format_lfw_table(report)


def test_lfw_same_person_pairs_score_higher(tiny_lfw: Path, recognizer) -> None:
    from faceapp.evaluation.images import embed_images

    dataset = load_lfw(tiny_lfw)
    embeddings = embed_images(recognizer, [dataset.images_dir / n for n in dataset.names], FacePolicy(), flip=False)
    assert embeddings.detected.all(), f"no face in {embeddings.no_face()}"
    left, right = dataset.pair_indices()
    scores = pair_scores(embeddings.plain, left, right, embeddings.usable)
    same = np.array([p.same for p in dataset.pairs])
    assert scores[same].min() > scores[~same].max(), f"same {scores[same]} vs different {scores[~same]}"
    assert scores[same].min() > 0.363  # OpenCV's documented SFace threshold


def test_lfw_cli_json(tiny_lfw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fixture_photos) -> None:
    code = _run_cli(["eval", "lfw", str(tiny_lfw), "--out", str(tmp_path / "cli"), "--json", "--no-flip", "-q"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["results"]) == {"plain"}
    assert report["results"]["plain"]["auc"] == pytest.approx(1.0)
    assert (tmp_path / "cli" / "report.json").is_file()


def test_ident_end_to_end(tiny_lfw: Path, recognizer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Folder-per-person layout from the LFW-layout crops.
    people = tmp_path / "people"
    for image in sorted((tiny_lfw / "images").glob("*.jpg")):
        folder = people / person_of(image)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, folder / image.name)
    report = run_ident(recognizer, people, IdentConfig(enroll=1, folds=2, seed=0), out_dir=tmp_path / "ident")
    assert len(report["splits"]) == 2
    for split in report["splits"]:
        assert split["known_people"] == 1 and split["stranger_people"] == 1
        assert split["rank1"] == 1.0  # one known person: closed-set is trivial
    assert report["summary"]["rank1"]["mean"] == 1.0
    # The app's own decision, each preset, and the fixed threshold of before, all measured.
    decisions = report["summary"]["decisions"]
    from faceapp.recognition.decision import DecisionRule

    fixed = DecisionRule(fixed=recognizer.card.threshold_presets[recognizer.card.default_preset]).label
    assert set(recognizer.card.threshold_presets) | {fixed} == set(decisions)
    assert report["summary"]["app_decision"]["rule"] == recognizer.decision.label == "balanced"
    assert report["summary"]["app_decision"]["target"] == pytest.approx(0.01)
    for split in report["splits"]:
        assert split["app_decision"] == split["decisions"]["balanced"]
        assert split["at_fixed"]["threshold"] == pytest.approx(recognizer.card.threshold_presets["balanced"])
    assert (tmp_path / "ident" / "report.json").is_file()
    # The LFW layout itself, through the CLI, is the same dataset.
    with pytest.raises(SystemExit):  # a gallery of one person is no open-set test
        _run_cli(["eval", "ident", str(tiny_lfw), "--gallery-sizes", "1,1"])
    assert "gallery sizes of 2 people or more" in capsys.readouterr().err
    assert _run_cli(["eval", "ident", str(tiny_lfw), "-k", "1", "--strangers", "1", "--out", str(tmp_path / "i2"), "-q",
                     "--threshold", "strict", "--gallery-sizes", "2"]) == 0
    text = capsys.readouterr().out
    assert "identification: 2 people" in text and "at the app's decision (strict, target 0.1% of strangers" in text
    assert "by gallery size" in text and "strict (app)" in text
    # More people than the dataset has: one line, no traceback.
    assert _run_cli(["eval", "ident", str(tiny_lfw), "-k", "1", "--strangers", "1", "--out", str(tmp_path / "i3"), "-q",
                     "--gallery-sizes", "5"]) == 1
    assert "a gallery of 5 people needs 5 people with more than 1 image(s); the dataset has 2" in capsys.readouterr().err
