"""GPU check for the CNNs and the whole pipeline (run it on a machine with an NVIDIA GPU).

Reports the device TensorFlow uses, and in one run:

* the embedding network on the GPU (float32 and mixed precision, batches 1 to 256) against
  the CPU runtime: ms per face, faces per second (goal: 5,000/s or more at batch 64/256 on
  a data-centre GPU), and how far the GPU embeddings are from the CPU ones (float32 must
  agree to 1e-4; the app uses mixed precision only if it stays within 1e-3);
* the detector (our TensorFlow YuNet) on 1280x720 frames on the GPU against LiteRT on the
  CPU: ms per frame, and the same faces (boxes and landmarks within 0.5 px);
* the whole pipeline on 1280x720 frames with 6 faces (the fixture photos tiled), tracking
  on and off, GPU against CPU in alternating rounds: frames per second, the same names on
  both, embeddings within 1e-3; with the default (fused) model, and with SFace alone
  (``pipeline_sface``: the frame program, detection to embedding on the device);
* the fused SFace + dlib model (``--model accurate``): its 256-d embeddings on the GPU
  against the CPU runtime (within 1e-3) and ms per face at batches 1 and 64.

    python tools/gpu_check.py [--json OUT.json] [--allow-cpu]

``--allow-cpu`` runs the same measurements with TensorFlow on the CPU when no GPU is
present (to test the script itself); without it, no GPU is an error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[1]))  # run from a checkout

logger = logging.getLogger("gpu_check")


def aligned_faces(count: int) -> np.ndarray:
    """Real aligned fixture faces when the shared photos exist, else smoothed noise."""
    from faceapp.paths import fixtures_dir

    crops = []
    folder = fixtures_dir()
    if folder.is_dir():
        from faceapp.media.imageio import read_image
        from faceapp.recognition.pipeline import PipelineConfig, Recognizer

        recognizer = Recognizer.create(PipelineConfig(device="cpu"))
        for path in sorted(folder.glob("*/*.jpg")):
            image = read_image(path)
            crops += [f.image for f in recognizer.align(image, recognizer.detect(image))]
    if not crops:
        rng = np.random.default_rng(0)
        crops = list(rng.integers(0, 255, (8, 112, 112, 3), dtype=np.uint8))
    reps = -(-count // len(crops))
    return np.concatenate([np.stack(crops)] * reps)[:count]


def per_face_ms(embed, faces: np.ndarray, batch: int, repeats: int = 5) -> float:
    chunk = faces[:batch]
    embed(chunk)
    embed(chunk)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        embed(chunk)
        timings.append((time.perf_counter() - start) * 1e3 / len(chunk))
    return float(np.median(timings))


def crowd_frames(count: int) -> list[np.ndarray]:
    """``count`` 1280x720 BGR frames, each with 6 fixture faces tiled in a 3x2 grid, the
    grid moving a few pixels from frame to frame (as people do)."""
    import cv2

    from faceapp.media.imageio import read_image
    from faceapp.paths import fixtures_dir

    photos = [read_image(p) for p in sorted(fixtures_dir().glob("[ob]*/*.jpg"))][:6]
    if len(photos) < 6:
        raise SystemExit(f"the fixture photos are needed for the pipeline check ({fixtures_dir()})")
    tiles = [cv2.resize(p, (400, 340), interpolation=cv2.INTER_AREA) for p in photos]
    frames = []
    for n in range(count):
        frame = np.full((720, 1280, 3), 60, np.uint8)
        dx, dy = int(10 * np.sin(n / 5)), int(6 * np.cos(n / 7))
        for i, tile in enumerate(tiles):
            x, y = 20 + (i % 3) * 420 + dx, 10 + (i // 3) * 360 + dy
            frame[y : y + 340, x : x + 400] = tile
        frames.append(frame)
    return frames


def detector_check(device: str, frames: list[np.ndarray]) -> dict:
    from faceapp.vision.detection import DetectorConfig
    from faceapp.vision.tf_detector import TfYuNetDetector, weights_path

    config = DetectorConfig(min_face_size=0, work_side=0)
    cpu = TfYuNetDetector(weights_path(), config, device="cpu")
    ours = TfYuNetDetector(weights_path(), config, device=device, runtime="tensorflow")
    worst, same = 0.0, True
    for frame in frames[:10]:
        a, b = cpu.raw(frame), ours.raw(frame)
        same = same and a.shape == b.shape
        if a.shape == b.shape and len(a):
            worst = max(worst, float(np.abs(np.sort(a[:, :14], axis=0) - np.sort(b[:, :14], axis=0)).max()))
    ms = {}
    for name, detector in (("cpu_litert", cpu), (f"{device}_tensorflow", ours)):
        detector.raw(frames[0])
        start = time.perf_counter()
        for frame in frames:
            detector.raw(frame)
        ms[name] = round((time.perf_counter() - start) * 1e3 / len(frames), 3)
    return {"runtime": ours.name, "ms_per_1280x720_frame": ms, "same_faces": same, "max_px_diff": worst,
            "within_0.5_px": same and worst < 0.5}


def pipeline_check(device: str, frames: list[np.ndarray], rounds: int = 3, model: str | None = None) -> dict:
    import tempfile
    from functools import partial

    from faceapp.evaluation.speed import alternate
    from faceapp.paths import fixtures_dir
    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.recognition.live import Tracking
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer
    from faceapp.storage.gallery import Gallery

    results, recognizers = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        gallery = Gallery(f"{scratch}/check.sqlite3")
        recognizers["cpu"] = Recognizer.create(PipelineConfig(model_dir=model, device="cpu"), gallery)
        other = f"{device}_tensorflow"  # (with --allow-cpu: TensorFlow's CPU kernels, to test the script)
        recognizers[other] = Recognizer.create(PipelineConfig(model_dir=model, device=device, backend="tensorflow"), gallery)
        for person in ("obama", "biden"):
            samples = samples_from_files(recognizers["cpu"], sorted((fixtures_dir() / person).glob("*.jpg")))
            gallery.add_person(person, [s.template(recognizers["cpu"].embedder.model_id) for s in samples])
        # Full size: the same input to both networks, so embeddings must agree to 1e-3 (video frames
        # are shrunk by TensorFlow's area resize on the GPU, OpenCV's on the CPU: landmarks a hair apart).
        outputs = {name: [r.process(frame, video=False) for frame in frames[:10]] for name, r in recognizers.items()}
        shrunk = {name: [r.process(frame, video=True) for frame in frames[:10]] for name, r in recognizers.items()}
        names_same = all([f.match.name for f in a.faces] == [f.match.name for f in b.faces]
                         for run in (outputs, shrunk) for a, b in zip(run["cpu"], run[other], strict=True))
        diffs = [float(np.abs(np.sort(np.stack([f.embedding for f in a.faces]), axis=0)
                              - np.sort(np.stack([f.embedding for f in b.faces]), axis=0)).max())
                 for a, b in zip(outputs["cpu"], outputs[other], strict=True) if a.faces and len(a.faces) == len(b.faces)]

        def fps(process) -> float:
            start = time.perf_counter()
            for frame in frames:
                process(frame)
            return len(frames) / (time.perf_counter() - start)

        measures = {}
        for name, recognizer in recognizers.items():
            measures[f"{name} tracking on"] = lambda r=recognizer: fps(partial(r.process, tracking=Tracking()))
            measures[f"{name} tracking off"] = lambda r=recognizer: fps(partial(r.process, video=True))
        if recognizers[other].frame_program is not None:  # what the one program gains, same run
            separate = Recognizer(recognizers[other].card, recognizers[other].detector, recognizers[other].embedder,
                                  gallery=gallery)
            separate.frame_program = None
            measures[f"{other} tracking off, detector and embedder called apart"] = (
                lambda r=separate: fps(partial(r.process, video=True)))
        per_round = alternate(measures, rounds)
        results["fps_1280x720_6_faces"] = {k: round(float(np.median(v)), 1) for k, v in per_round.items()}
        results["faces_per_frame"] = round(float(np.mean([len(o.faces) for o in outputs["cpu"]])), 1)
        results["same_names_gpu_cpu"] = names_same
        results["max_embedding_diff_gpu_cpu"] = max(diffs) if diffs else None
        results["embeddings_within_1e-3"] = bool(diffs) and max(diffs) < 1e-3
        results["devices"] = {name: r.embedder.device_name + " / detector " + r.detector.name
                              + (" / one frame program" if r.frame_program is not None else "") for name, r in recognizers.items()}
        gallery.close()
    return results


def fused_check(device: str) -> dict:
    """The fused model (SFace + dlib ResNet) on ``device`` in TensorFlow against LiteRT on the
    CPU, on the fixture faces (ArcFace crops and dlib chips of each)."""
    from faceapp.embedding.ensemble import make_embedder
    from faceapp.embedding.modelcard import load_card
    from faceapp.media.imageio import read_image
    from faceapp.paths import fixtures_dir
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer

    card = load_card("accurate")
    recognizer = Recognizer.create(PipelineConfig(model_dir="accurate", device="cpu"))
    faces = []
    for path in sorted(fixtures_dir().glob("*/*.jpg")):
        image = read_image(path)
        faces += recognizer.align(image, recognizer.detect(image))
    if not faces:
        return {"skipped": "no fixture photos", "max_abs_diff_vs_cpu": 0.0}
    reps = -(-64 // len(faces))
    crops = np.concatenate([np.stack([f.image for f in faces])] * reps)[:64]
    chips = np.concatenate([np.stack([f.chip for f in faces])] * reps)[:64]
    on_device = make_embedder(card, device=device, backend="tensorflow", precision="float32")
    reference = recognizer.embedder.embed(crops, chips)
    return {
        "device_used": on_device.device_name,
        "max_abs_diff_vs_cpu": float(np.abs(on_device.embed(crops, chips) - reference).max()),
        "ms_per_face": {str(b): round(per_face_ms(lambda c: on_device.embed(c, chips[: len(c)]), crops, b), 4) for b in (1, 64)},
        "cpu_ms_per_face": {str(b): round(per_face_ms(lambda c: recognizer.embedder.embed(c, chips[: len(c)]), crops, b), 4)
                            for b in (1, 64)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="also write the report here")
    parser.add_argument("--allow-cpu", action="store_true", help="measure with TensorFlow on the CPU if no GPU is present")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from faceapp.accel.device import import_tensorflow
    from faceapp.embedding.modelcard import load_card
    from faceapp.embedding.runtime import Embedder

    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    report: dict = {"tensorflow": tf.__version__, "gpus": [g.name for g in gpus]}
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        report["gpu_name"] = details.get("device_name", "?")
    elif not args.allow_cpu:
        print("no GPU visible to TensorFlow; nothing to check (use --allow-cpu to test the script)", file=sys.stderr)
        return 1
    device = "gpu" if gpus else "cpu"
    card = load_card("sface")  # the fused model has its own check below
    faces = aligned_faces(256)
    cpu = Embedder(card, device="cpu")
    fp32 = Embedder(card, device=device, backend="tensorflow", precision="float32")
    mixed = Embedder(card, device=device, backend="tensorflow", precision="mixed")
    auto = Embedder(card, device=device)
    report["device_used"] = {"float32": fp32.device_name, "mixed": mixed.device_name, "app_default": auto.device_name, "cpu_reference": cpu.device_name}
    reference = cpu.embed(faces[:64])
    report["max_abs_diff_vs_cpu"] = {
        "float32": float(np.abs(fp32.embed(faces[:64]) - reference).max()),
        "mixed": float(np.abs(mixed.embed(faces[:64]) - reference).max()),
    }
    report["ms_per_face"] = {}
    for name, embedder in (("cpu_litert", cpu), (f"{device}_float32", fp32), (f"{device}_mixed", mixed)):
        report["ms_per_face"][name] = {str(b): round(per_face_ms(embedder.embed, faces, b), 4) for b in (1, 8, 64, 256)}
    report["faces_per_second"] = {name: {b: round(1000 / ms, 1) for b, ms in values.items() if b in ("64", "256")}
                                  for name, values in report["ms_per_face"].items()}
    report["fused"] = fused_check(device)
    frames = crowd_frames(60)
    report["detector"] = detector_check(device, frames)
    report["pipeline"] = pipeline_check(device, frames)  # the default, fused model: each network on the device
    report["pipeline_sface"] = pipeline_check(device, frames, model="sface")  # one network: the frame program
    best_cpu = min(report["ms_per_face"]["cpu_litert"].values())
    report["speedup_vs_cpu_best"] = {
        name: round(best_cpu / min(values.values()), 2) for name, values in report["ms_per_face"].items()
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    checks = {
        "float32 embeddings within 1e-4 of the CPU's": report["max_abs_diff_vs_cpu"]["float32"] < 1e-4,
        "detector: the same faces within 0.5 px": report["detector"]["within_0.5_px"],
        "pipeline: the same names on GPU and CPU": report["pipeline"]["same_names_gpu_cpu"],
        "pipeline: embeddings within 1e-3": report["pipeline"]["embeddings_within_1e-3"],
        "pipeline (SFace, frame program): the same names": report["pipeline_sface"]["same_names_gpu_cpu"],
        "pipeline (SFace, frame program): embeddings within 1e-3": report["pipeline_sface"]["embeddings_within_1e-3"],
        "fused model: embeddings within 1e-3 of the CPU's": report["fused"]["max_abs_diff_vs_cpu"] < 1e-3,
    }
    for what, passed in checks.items():
        print(f"{what}: {'yes' if passed else 'NO'}")
    ok = all(checks.values())
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
