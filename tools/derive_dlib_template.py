"""Derive :data:`faceapp.vision.dlib_align.DLIB_CHIP_TEMPLATE`: where YuNet's 5 landmarks
fall in dlib's 150x150 face chip (development tool; needs dlib and face_recognition_models).

    python tools/derive_dlib_template.py [--fixtures DIR] [--lfw DIR] [--fold 1] [--points FILE] [--check]

Faces: every face dlib's HOG detector finds in the fixture photos (upsampled once for
images of 600 px or less), matched to the YuNet detection whose eyes are nearest dlib's (and near enough, below);
and the subject of each LFW image of pairs fold ``--fold`` (default 1: its people are in
no other fold, so folds 2-10 stay out of sample): YuNet's landmarks found as ``faceapp
eval lfw`` finds them (:class:`~faceapp.vision.faces.FacePolicy`, 1x and 2x averaged),
dlib's HOG face nearest the image centre (upsampled once). A face is kept when YuNet's
eye centres are within a quarter of the eye distance of dlib's (mean of each eye's two
corners).

For each face, dlib's chip geometry is the map from chip pixels to image pixels that
``dlib.get_face_chip(image, predictor(image, box), 150, 0.25)`` samples through (from
:func:`faceapp.vision.dlib_chip.chip_details`, before any pyramid level). YuNet's points
are mapped into the chip through it, and the template is their mean. The script prints
it (the constant to paste), the spread of the points, and how far the chip cut through
the template lies from dlib's: the displacement of a 7x7 grid of chip points (RMS, mean,
95th percentile and the worst face's mean, in chip pixels); with ``--check``, also the
cosine similarity of dlib's own descriptors (dlib's ResNet) of the two chips, and of
dlib's chip and the one :func:`faceapp.vision.dlib_align.cut_chip` cuts through dlib's
own geometry (about 4 minutes: dlib's network on the CPU).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from convert_dlib_resnet import LANDMARKS_NAME, SOURCE_NAME, packaged_model

from faceapp.paths import fixtures_dir, lfw_dir
from faceapp.vision.dlib_chip import CHIP_SIZE, chip_details

logger = logging.getLogger("derive_dlib_template")
GRID = 7  # chip points per side for the displacement


def dlib_landmarks(predictor, rgb: np.ndarray, rect) -> np.ndarray:
    """dlib's 5 points in ``rect`` (a ``dlib.rectangle``): float64 ``(5, 2)``."""
    shape = predictor(rgb, rect)
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], np.float64)


def chip_to_image(landmarks: np.ndarray) -> tuple[complex, complex]:
    """dlib's chip geometry for these 5 dlib points as a complex similarity ``z -> a z + b``
    (chip pixel ``x + iy`` -> image pixel): the three corners ``extract_chip`` maps."""
    import math

    details = chip_details(landmarks)
    left, top, right, bottom = details.rect
    centre = complex((left + right) / 2, (top + bottom) / 2)
    rotation = complex(math.cos(details.angle), math.sin(details.angle))
    top_left = (complex(left, top) - centre) * rotation + centre
    top_right = (complex(right, top) - centre) * rotation + centre
    a = (top_right - top_left) / (details.cols - 1)
    return a, top_left


def eye_centres_dlib(points: np.ndarray) -> np.ndarray:
    """The person's right and left eye centres from dlib's 5 points (YuNet's order)."""
    return np.array([(points[2] + points[3]) / 2, (points[0] + points[1]) / 2])


def matches(yunet: np.ndarray, dlib_points: np.ndarray) -> bool:
    eyes = eye_centres_dlib(dlib_points)
    distance = np.linalg.norm(eyes[1] - eyes[0])
    return bool(np.linalg.norm(yunet[:2] - eyes, axis=1).max() < 0.25 * distance)


def collect(detector, fixtures: Path, lfw: Path, fold: int) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """YuNet's and dlib's points of every kept face: two float64 ``(n, 5, 2)``, their
    names (``fixtures/FILE`` or ``lfw/FILE``), and counts of what was dropped."""
    import dlib

    from faceapp.evaluation.lfw import load_lfw
    from faceapp.media.imageio import read_image
    from faceapp.vision.faces import FacePolicy, find_face

    hog = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(packaged_model(LANDMARKS_NAME)))
    yunet_points, dlib_points, names = [], [], []
    counts = {"fixture_faces": 0, "lfw_images": 0, "lfw_no_hog": 0, "lfw_no_yunet": 0, "unmatched": 0}
    for path in sorted(fixtures.rglob("*.jpg")):
        image = read_image(path)
        rgb = np.ascontiguousarray(image[..., ::-1])
        detections = detector.detect(image)
        for rect in hog(rgb, 0 if max(rgb.shape[:2]) > 600 else 1):
            points = dlib_landmarks(predictor, rgb, rect)
            eyes = eye_centres_dlib(points)
            near = [np.asarray(d.landmarks, np.float64) for d in detections if matches(np.asarray(d.landmarks, np.float64), points)]
            if not near:
                counts["unmatched"] += 1
                continue
            yunet_points.append(min(near, key=lambda found: float(np.linalg.norm(found[:2] - eyes))))
            dlib_points.append(points)
            names.append(f"fixtures/{path.name}")
            counts["fixture_faces"] += 1
    dataset = load_lfw(lfw)
    fold_names = sorted({name for pair in dataset.pairs if pair.fold == fold - 1 for name in (pair.left, pair.right)})
    policy = FacePolicy()
    for name in fold_names:
        counts["lfw_images"] += 1
        image = read_image(dataset.images_dir / name)
        rgb = np.ascontiguousarray(image[..., ::-1])
        found = find_face(detector.detect, image, policy)
        if not found.detected:
            counts["lfw_no_yunet"] += 1
            continue
        rects = hog(rgb, 1)
        if not rects:
            counts["lfw_no_hog"] += 1
            continue
        height, width = rgb.shape[:2]
        rect = min(rects, key=lambda r: np.hypot(r.center().x - width / 2, r.center().y - height / 2))
        points = dlib_landmarks(predictor, rgb, rect)
        if not matches(found.landmarks.astype(np.float64), points):
            counts["unmatched"] += 1
            continue
        yunet_points.append(found.landmarks.astype(np.float64))
        dlib_points.append(points)
        names.append(f"lfw/{name}")
    return np.stack(yunet_points), np.stack(dlib_points), names, counts


def complex_points(points: np.ndarray) -> np.ndarray:
    return points[..., 0] + 1j * points[..., 1]


def fit_similarities(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarities ``target ~ a * source + b`` of many point sets at once
    (complex ``(n, k)`` source, ``(k,)`` or ``(n, k)`` target): complex ``a, b`` ``(n,)``
    (Umeyama's without reflection)."""
    source_mean = source.mean(axis=-1, keepdims=True)
    target = np.broadcast_to(target, source.shape)
    target_mean = target.mean(axis=-1, keepdims=True)
    centred = source - source_mean
    a = (np.conj(centred) * (target - target_mean)).sum(-1) / (np.abs(centred) ** 2).sum(-1)
    return a, (target_mean[..., 0] - a * source_mean[..., 0])


def grid_errors(template: np.ndarray, yunet: np.ndarray, geometry: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Displacement (chip pixels) of each grid point of each face: ``(n, GRID**2)``."""
    a_dlib, b_dlib = geometry
    steps = np.linspace(0, CHIP_SIZE - 1, GRID)
    grid = (steps[None, :] + 1j * steps[:, None]).reshape(-1)
    image_points = a_dlib[:, None] * grid[None, :] + b_dlib[:, None]  # where dlib samples them
    a, b = fit_similarities(complex_points(yunet), complex_points(template))
    return np.abs(a[:, None] * image_points + b[:, None] - grid[None, :])


def summary(errors: np.ndarray) -> str:
    return (f"RMS {np.sqrt(np.mean(errors**2)):.3f} px, mean {errors.mean():.3f}, "
            f"95th percentile {np.percentile(errors, 95):.3f}, worst face mean {errors.mean(axis=1).max():.2f}")


def derive(yunet: np.ndarray, dlib_points: np.ndarray) -> dict[str, np.ndarray]:
    """The template (float64 ``(5, 2)``: the mean of YuNet's points in dlib's chips), the
    spread (std) of those points, and dlib's chip geometry of each face (complex ``a, b``)."""
    geometry = tuple(np.array(v) for v in zip(*(chip_to_image(points) for points in dlib_points), strict=True))
    a_dlib, b_dlib = geometry
    in_chip = (complex_points(yunet) - b_dlib[:, None]) / a_dlib[:, None]  # image -> dlib's chip
    template = np.stack([in_chip.real.mean(0), in_chip.imag.mean(0)], axis=1)
    spread = np.stack([in_chip.real.std(0), in_chip.imag.std(0)], axis=1)
    return {"template": template, "spread": spread, "geometry": geometry}


def check_descriptors(names: list[str], yunet: np.ndarray, dlib_points: np.ndarray, template: np.ndarray,
                      geometry: tuple[np.ndarray, np.ndarray], fixtures: Path, lfw: Path) -> dict[str, np.ndarray]:
    """Cosine similarities of dlib's descriptors (dlib's own network): dlib's chip vs the
    chip cut from YuNet's points through ``template``, and vs ``cut_chip`` through dlib's
    own geometry (the warp alone). ``(n,)`` each."""
    import dlib

    from faceapp.media.imageio import read_image
    from faceapp.vision.dlib_align import chip_transform, cut_chip
    from faceapp.vision.dlib_chip import face_chip

    network = dlib.face_recognition_model_v1(str(packaged_model(SOURCE_NAME)))

    def descriptor(chip_bgr: np.ndarray) -> np.ndarray:
        value = np.array(network.compute_face_descriptor(np.ascontiguousarray(chip_bgr[..., ::-1])))
        return value / np.linalg.norm(value)

    out = {"template": np.zeros(len(names)), "warp": np.zeros(len(names))}
    for row, name in enumerate(names):
        where, file = name.split("/", 1)
        image = read_image(lfw / "images" / file if where == "lfw" else next(fixtures.rglob(file)))
        reference = descriptor(face_chip(image, dlib_points[row]))
        inverse_a = 1 / geometry[0][row]
        inverse_b = -geometry[1][row] * inverse_a
        dlib_matrix = np.array([[inverse_a.real, -inverse_a.imag, inverse_b.real],
                                [inverse_a.imag, inverse_a.real, inverse_b.imag]])
        out["template"][row] = descriptor(cut_chip(image, chip_transform(yunet[row], template))) @ reference
        out["warp"][row] = descriptor(cut_chip(image, dlib_matrix)) @ reference
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=None, help="fixture photos (default ../shared/fixtures/faces)")
    parser.add_argument("--lfw", type=Path, default=None, help="LFW folder (default ../shared/data/lfw)")
    parser.add_argument("--fold", type=int, default=1, help="the LFW pairs fold whose images are used (1-10, default 1)")
    parser.add_argument("--check", action="store_true", help="also compare dlib's descriptors of the chips (minutes)")
    parser.add_argument("--points", type=Path, default=None, help="keep the collected points in this .npz (read it when present)")
    args = parser.parse_args(argv)
    if args.points is not None and args.points.exists():
        saved = np.load(args.points)
        yunet, dlib_points, names = saved["yunet"], saved["dlib"], list(saved["names"])
    else:
        if packaged_model(LANDMARKS_NAME) is None:
            raise SystemExit("needs dlib's 5-point predictor: pip install dlib-bin face_recognition_models")
        from faceapp.recognition.pipeline import PipelineConfig, build_detector

        detector = build_detector(PipelineConfig(device="cpu"))
        yunet, dlib_points, names, counts = collect(detector, args.fixtures or fixtures_dir(), args.lfw or lfw_dir(), args.fold)
        logger.info("faces: %s; kept %d", counts, len(names))
        if args.points is not None:
            np.savez(args.points, yunet=yunet, dlib=dlib_points, names=np.array(names))
    fixture_count = sum(name.startswith("fixtures/") for name in names)
    logger.info("%d faces (%d from the fixture photos, %d from LFW fold %d)", len(names), fixture_count,
                len(names) - fixture_count, args.fold)
    result = derive(yunet, dlib_points)
    logger.info("chip cut through the template vs dlib's chip: %s", summary(grid_errors(result["template"], yunet, result["geometry"])))
    logger.info("spread (std) of YuNet's points in dlib's chip, px:\n%s", np.array2string(result["spread"], precision=2))
    if args.check:
        cosines = check_descriptors(names, yunet, dlib_points, result["template"], result["geometry"],
                                    args.fixtures or fixtures_dir(), args.lfw or lfw_dir())
        fixture_rows = np.array([name.startswith("fixtures/") for name in names])
        for kind, values in cosines.items():
            logger.info("dlib descriptor cosine, dlib's chip vs %s: mean %.4f, 1st percentile %.4f, least %.4f; "
                        "fixture faces: least %.4f", "ours (template)" if kind == "template" else "cut_chip through dlib's geometry",
                        values.mean(), np.percentile(values, 1), values.min(), values[fixture_rows].min())
    rows = ",\n".join(f"        [{x:.4f}, {y:.4f}]" for x, y in result["template"])
    print(f"DLIB_CHIP_TEMPLATE = np.array(\n    [\n{rows},\n    ],\n    dtype=np.float64,\n)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
