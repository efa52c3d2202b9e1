"""``faceapp bench``: speed, side by side with OpenCV's own pipeline, in alternating rounds."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from faceapp.cli.argtypes import positive_int
from faceapp.cli.common import build_recognizer, print_json
from faceapp.errors import FaceAppError, SourceError

logger = logging.getLogger(__name__)


def _enroll_fixtures(recognizer: Any, gallery: Any, fixtures: Path) -> None:
    """A small real gallery (the two fixture people), so matching costs what it costs."""
    from faceapp.recognition.enrollment import samples_from_files

    for person in ("obama", "biden"):
        samples = samples_from_files(recognizer, sorted((fixtures / person).glob("*.jpg")))
        gallery.add_person(person, [s.template(recognizer.embedder.model_id) for s in samples])


def _other_model_recognizer(args: argparse.Namespace, recognizer: Any, scratch: Path, fixtures: Path) -> Any:
    """The pipeline of the other shipped embedding model (the fused SFace + dlib one when
    ``recognizer`` runs SFace alone, and the other way round), with the same detector,
    over a gallery of its own holding the fixture people; None with ``--no-fused`` or when
    its weights are missing."""
    from faceapp.embedding.ensemble import make_embedder
    from faceapp.embedding.modelcard import load_card
    from faceapp.errors import ModelError
    from faceapp.recognition.pipeline import Recognizer
    from faceapp.storage.gallery import Gallery

    if getattr(args, "no_fused", False):
        return None
    try:
        card = load_card("sface" if recognizer.card.is_ensemble else "accurate")
        embedder = make_embedder(card, device=args.device)
    except ModelError as error:
        logger.info("the other model's rows are left out: %s", error)
        return None
    gallery = Gallery(scratch / f"bench-{card.model_id}.sqlite3")
    other = Recognizer(card, recognizer.detector, embedder, None, gallery)
    if fixtures.is_dir():
        _enroll_fixtures(other, gallery, fixtures)
    return other


def _methods(text: str) -> tuple[str, ...]:
    from faceapp.evaluation.search_speed import METHOD_KEYS

    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in keys if k not in METHOD_KEYS]
    if not keys or unknown:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(METHOD_KEYS)} (got {text!r})")
    return keys


def cmd_bench_search(args: argparse.Namespace) -> int:
    """``faceapp bench search``: exact numpy against the app's index (faiss PQ fast-scan,
    re-scored) and HNSW references, 10k to 1M templates."""
    from faceapp.evaluation.search_speed import bench_search, chosen_methods, format_search_table
    from faceapp.paths import lfw_dir

    folder = args.lfw or lfw_dir()
    methods = chosen_methods(args.methods)
    real = _real_embeddings(args, folder, args.real)
    rows, distribution = bench_search(real, args.sizes, queries=args.queries, rounds=args.rounds, methods=methods)
    if args.json:
        print_json({"real_embeddings": len(real), "sizes": list(args.sizes), "rows": [r.to_json() for r in rows],
                    "similarity_percentiles": distribution})
        return 0
    print(f"{len(real)} real SFace embeddings of LFW faces, the rest synthetic (fitted to them); "
          f"{args.queries} queries; compare rows of one size")
    print(format_search_table(rows, distribution))
    return 0


def _real_embeddings(args: argparse.Namespace, folder: Path, count: int) -> np.ndarray:
    """Up to ``count`` embeddings of the photos of a folder of faces (LFW's layout works)."""
    from faceapp.evaluation.ident import discover_people
    from faceapp.evaluation.images import embed_images
    from faceapp.vision.faces import FacePolicy

    if not Path(folder).is_dir():
        raise FaceAppError(f"no face photos at {folder} to take real embeddings from (--lfw DIR, or FACEAPP_LFW_DIR)")
    paths = [p for ps in discover_people(folder).values() for p in ps][:count]
    result = embed_images(build_recognizer(args), paths, FacePolicy(no_face="skip"), flip=False, progress=not args.quiet)
    return result.plain[result.usable]


def cmd_bench(args: argparse.Namespace) -> int:
    if getattr(args, "target", None) == "search":
        return cmd_bench_search(args)
    from faceapp.accel.device import import_tensorflow

    import_tensorflow()  # first, before OpenCV's DNN rows or Keras import it: its start-up noise stays hidden
    from faceapp.evaluation import speed
    from faceapp.paths import fixtures_dir, reference_sface_onnx
    from faceapp.recognition.live import Tracking
    from faceapp.storage.gallery import Gallery
    from faceapp.vision.detection import YuNetDetector, yunet_path

    with tempfile.TemporaryDirectory() as scratch:
        video = args.video
        fixtures = fixtures_dir()
        if video is None:
            from faceapp.media.fixture_video import make_fixture_video

            if not fixtures.is_dir():
                raise FaceAppError(f"no --video given and the fixture photos are not at {fixtures} (set FACEAPP_FIXTURES)")
            video = make_fixture_video(fixtures, Path(scratch) / "fixtures.avi", size=args.size).path
        frames = speed.read_frames(video, args.frames)
        if not frames:
            raise SourceError(f"{video}: no frames")
        with Gallery(Path(scratch) / "bench.sqlite3") as gallery:
            recognizer = build_recognizer(args, gallery)
            if fixtures.is_dir():
                _enroll_fixtures(recognizer, gallery, fixtures)
            device = "GPU" if recognizer.embedder.choice.kind == "gpu" else "CPU"
            from faceapp.recognition.memory import Memory
            from faceapp.recognition.memory_writer import MemoryWriter

            writer = MemoryWriter(gallery)  # one writer thread for every round's memory

            def with_memory():
                tracking = Tracking()
                memory = Memory(gallery, recognizer.embedder.model_id, recognizer.card.embedding_dim, "bench", writer=writer)
                return lambda frame: memory.observe(recognizer.process(frame, tracking=tracking))

            from faceapp.recognition.pipeline import Recognizer

            # The live loop as it was before our detector (issue 16): OpenCV's, at full size.
            full = dataclasses.replace(recognizer.detector.config, work_side=0)
            before = Recognizer(recognizer.card, YuNetDetector(yunet_path(args.model), full), recognizer.embedder,
                                recognizer.decision, gallery)

            def with_opencv_detector():
                return partial(before.process, tracking=Tracking())

            pipelines = [
                speed.faceapp_pipeline(f"faceapp tracking on ({device})", lambda: partial(recognizer.process, tracking=Tracking())),
                speed.faceapp_pipeline(f"faceapp tracking on + sightings ({device})", with_memory),
                speed.faceapp_pipeline(f"faceapp tracking off ({device})", lambda: partial(recognizer.process, video=True)),
                speed.faceapp_pipeline("tracking on, OpenCV detector, full size", with_opencv_detector),
            ]
            other = _other_model_recognizer(args, recognizer, Path(scratch), fixtures)
            if other is not None:  # the fused model beside the plain one (or the plain one beside the fused)
                label = "fused SFace + dlib" if other.card.is_ensemble else "SFace alone"
                pipelines += [
                    speed.faceapp_pipeline(f"{label}, tracking on ({device})", lambda: partial(other.process, tracking=Tracking())),
                    speed.faceapp_pipeline(f"{label}, tracking off ({device})", lambda: partial(other.process, video=True)),
                ]
            onnx = reference_sface_onnx()
            # OpenCV's SFace matches against SFace templates: the fused model's are the other gallery's.
            sface = other if recognizer.card.is_ensemble else recognizer
            if onnx.is_file() and sface is not None:
                reference_gallery = sface.gallery.matrix(sface.embedder.model_id).embeddings
                pipelines.append(speed.opencv_reference_pipeline(yunet_path(args.model), onnx, reference_gallery))
            else:
                print(f"faceapp: note: the OpenCV reference rows are left out: {onnx} is missing "
                      "(bash tools/fetch_reference_model.sh fetches it, or set FACEAPP_SFACE_ONNX)", file=sys.stderr)
            if speed.face_recognition_available():
                photos = [min((fixtures / p).glob("*.jpg")) for p in ("obama", "biden")] if fixtures.is_dir() else []
                pipelines.append(speed.face_recognition_pipeline(photos))
            else:
                logger.info("face_recognition (dlib) is not installed: its row is skipped (see the README)")
            try:
                results = speed.run_pipelines(pipelines, frames, rounds=args.rounds, reference=speed.REFERENCE_NAME)
            finally:
                writer.close()
            detector_rows = []
            if not args.no_detector:
                from faceapp.evaluation.detect_speed import REFERENCE, bench_detectors

                detectors = {REFERENCE: before.detector.detect}  # OpenCV's, at full size
                live = recognizer.detector
                if not isinstance(live, YuNetDetector):
                    detectors[f"ours, {live.name}"] = type(live)(live.weights, full, choice=live.choice).detect
                detectors[f"{live.name}, video (--detect-side {live.config.work_side})"] = partial(live.detect, video=True)
                detector_rows = bench_detectors(detectors, frames[:40], rounds=args.rounds)
            liveness_row = _bench_liveness(recognizer, frames, args) if not args.no_liveness else None
            embedding_rows = []
            if not args.no_embedding:
                crops = []
                for frame in frames:
                    crops += [f.image for f in recognizer.align(frame, recognizer.detect(frame))]
                    if len(crops) >= 8:
                        break
                if crops:  # SFace's network (the fused model's first member)
                    card = recognizer.card.members[0] if recognizer.card.is_ensemble else recognizer.card
                    embedding_rows = speed.bench_embedding(card, np.stack(crops[:8]), onnx if onnx.is_file() else None,
                                                           rounds=args.rounds)
    from faceapp.evaluation.match_speed import MATCH_GALLERY, bench_matching, format_match_table

    on, remembered = results[0], next(r for r in results if "sightings" in r.name)
    sightings_ratio = speed.paired_ratio(remembered.round_fps, on.round_fps)
    before = next(r for r in results if "OpenCV detector" in r.name)
    detector_ratio = speed.paired_ratio(on.round_fps, before.round_fps)

    people, templates, faces = MATCH_GALLERY
    match_rows, calibrate_ms = bench_matching(recognizer.calibration, people=people, templates=templates, faces=faces,
                                              rounds=args.rounds)
    if args.json:
        print_json({
            "video": str(args.video or "fixture video"),
            "frames": len(frames),
            "frame_size": [frames[0].shape[1], frames[0].shape[0]],
            "rounds": args.rounds,
            "pipelines": [r.to_json() for r in results],
            "sightings_vs_tracking_on": round(sightings_ratio, 3),
            "tracking_on_vs_opencv_detector": round(detector_ratio, 3),
            "detectors": [r.to_json() for r in detector_rows],
            "liveness": liveness_row,
            "embedding": [{"runtime": r.name, "batch": r.batch, "ms_per_face": round(r.ms_per_face, 3),
                           "vs_reference": None if r.vs_reference is None else round(r.vs_reference, 3)} for r in embedding_rows],
            "matching": {"people": people, "templates": templates, "faces": faces, "calibrate_ms": round(calibrate_ms, 1),
                         "rows": [{"name": r.name, "us_per_frame": round(r.us_per_frame, 1),
                                   "vs_fixed": None if r.vs_reference is None else round(r.vs_reference, 3)} for r in match_rows]},
        })
        return 0
    print(f"{len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} from {args.video or 'the fixture video'}; "
          "compare ratios between rows, not absolute times")
    print(speed.format_pipeline_table(results))
    print(f"sightings on / off (tracking on): {sightings_ratio:.2f}x fps (median of the per-round ratios; "
          f"the cost of remembering every track: {max(0.0, 1 - sightings_ratio):.0%})")
    print(f"tracking on / the same with OpenCV's detector at full size: {detector_ratio:.2f}x fps (median of the "
          f"per-round ratios: what our detector and --detect-side {recognizer.detector.config.work_side} give the live loop)")
    if detector_rows:
        from faceapp.evaluation.detect_speed import format_detector_table

        print()
        print(format_detector_table(detector_rows))
    if liveness_row:
        print()
        print(f"liveness (MiniFASNetV2 + V1SE, {liveness_row['runtime']}): {liveness_row['ms_per_face_1']:.2f} ms a face one at "
              f"a time, {liveness_row['ms_per_face_batch']:.2f} ms a face in frames of {liveness_row['faces_per_frame']:.1f} "
              "faces (the window's live badge costs this per face and frame; enrollment and verify --live run it too)")
    if embedding_rows:
        print()
        print(speed.format_embedding_table(embedding_rows))
    print()
    print(format_match_table(match_rows, calibrate_ms, people, templates, faces))
    return 0


def _bench_liveness(recognizer: Any, frames: list[np.ndarray], args: argparse.Namespace) -> dict | None:
    """ms per face of the passive liveness check on the bench's faces (median of rounds)."""
    import time

    from faceapp.vision.liveness import LivenessChecker

    checker = LivenessChecker(args.model, device=args.device)
    scenes = [(f, recognizer.detect(f, video=True)) for f in frames[:40]]
    scenes = [(f, found) for f, found in scenes if found]
    if not scenes:
        return None
    faces = sum(len(found) for _, found in scenes)

    def per_face(batched: bool) -> float:
        began = time.perf_counter()
        for frame, found in scenes:
            if batched:
                checker.check_many(frame, found)
            else:
                for face in found:
                    checker.check(frame, face)
        return (time.perf_counter() - began) * 1e3 / faces

    from faceapp.evaluation.speed import alternate

    laps = alternate({"one": lambda: per_face(False), "batch": lambda: per_face(True)}, args.rounds)
    return {"runtime": checker.name, "ms_per_face_1": round(float(np.median(laps["one"])), 3),
            "ms_per_face_batch": round(float(np.median(laps["batch"])), 3), "faces_per_frame": round(faces / len(scenes), 2)}


def _frame_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}") from None
    if not (64 <= width <= 4096 and 64 <= height <= 4096):
        raise argparse.ArgumentTypeError(f"frame sides must be 64 to 4096 pixels, got {text!r}")
    return width, height


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers of templates separated by commas, got {text!r}") from None
    if not values or min(values) < 10 or max(values) > 5_000_000:
        raise argparse.ArgumentTypeError(f"expected sizes from 10 to 5,000,000 templates, got {text!r}")
    return tuple(sorted(set(values)))


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``bench`` to the CLI's subparsers."""
    bench = commands.add_parser(
        "bench", parents=[common],
        help="measure speed against OpenCV's own YuNet + SFace pipeline (and face_recognition, if installed), in one run",
        description="Time FaceApp's pipeline (tracking on and off) and OpenCV's own YuNet + SFace pipeline on the same "
        "decoded frames, in alternating rounds (A B C, C B A, ...): fps is the median of the rounds and the ratio to "
        "OpenCV the median of the per-round ratios, so the machine's drift cancels. Then the embedding network alone "
        "under LiteRT, plain TensorFlow and OpenCV's DNN on the same aligned crops, likewise; and the open-set "
        "decision alone (one fixed threshold against per-person thresholds and 'not them' templates, 1000 people). "
        "The 'sightings' row also remembers every track (written on its own thread): compare it with 'tracking on'.",
    )
    bench.add_argument("target", nargs="?", choices=("search",),
                       help="'search': nearest-template search at 10k to 1M templates (exact vs the app's faiss PQ "
                       "fast-scan index vs HNSW references) instead")
    bench.add_argument("--sizes", type=_sizes, default=(10_000, 100_000, 1_000_000), metavar="N[,N...]",
                       help="search: gallery sizes in templates (default: 10000,100000,1000000)")
    bench.add_argument("--queries", type=positive_int, default=200, metavar="N", help="search: queries per size (default: 200)")
    bench.add_argument("--methods", type=_methods, metavar="M[,M...]",
                       help="search: only these of exact, app (the app's faiss PQ fast-scan index, candidates re-scored), "
                       "usearch and faiss (HNSW), pgvector (default: all available; exact always runs, as the reference)")
    bench.add_argument("--real", type=positive_int, default=4000, metavar="N",
                       help="search: real embeddings to embed from LFW (default: 4000; the rest are synthetic)")
    bench.add_argument("--lfw", type=Path, metavar="DIR", help="search: where the real faces are (default: the shared LFW)")
    bench.add_argument("--video", metavar="FILE", help="video to process (default: one made from the fixture photos, --size)")
    bench.add_argument("--size", type=_frame_size, default=(640, 480), metavar="WxH",
                       help="size of the fixture video's frames (default: 640x480; e.g. 1280x720, a common webcam's)")
    bench.add_argument("--frames", type=positive_int, metavar="N", help="use at most N frames")
    bench.add_argument("--rounds", type=positive_int, default=5, metavar="N", help="alternating rounds (default: 5)")
    bench.add_argument("--no-embedding", action="store_true", help="skip the embedding-only comparison")
    bench.add_argument("--no-liveness", action="store_true", help="skip the cost of the passive liveness check")
    bench.add_argument("--no-fused", action="store_true",
                       help="skip the rows of the other embedding model (SFace alone when the fused default is in use, else the fused one)")
    bench.add_argument("--no-detector", action="store_true",
                       help="skip the detector-only comparison (OpenCV's DNN and ours at 640x360, 640x480 and 1280x720)")
    bench.add_argument("--json", action="store_true", help="print one object per pipeline (name, fps, per-stage ms)")
    bench.set_defaults(func=cmd_bench)
