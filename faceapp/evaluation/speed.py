"""Speed measurements, printed side by side with references measured in the same run.

These machines are noisy, so the compared pipelines run **in alternating rounds**: every
round runs each pipeline once over the same frames (in turn, the order reversed every
other round: A B C, C B A, ...), and a pipeline's speed against the reference is the
*median of its per-round ratios*, so a drift of the machine's speed during the run
cancels out instead of favouring whichever ran first. Read the ratios, not absolute times.

* pipelines: per-stage milliseconds (median and 95th percentile over every frame of
  every round) and frames per second (the median of the rounds) of FaceApp's pipeline,
  next to OpenCV's own YuNet + SFace pipeline (``cv2.FaceDetectorYN`` +
  ``cv2.FaceRecognizerSF.alignCrop/feature``) on the same frames.
* embedding: milliseconds per face of the embedding CNN alone on the same aligned
  crops: FaceApp's runtime (LiteRT on CPU), plain TensorFlow, and OpenCV's DNN running
  OpenCV Zoo's ONNX file of the same network, also in alternating rounds.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

STAGES = ("detect", "align", "embed", "match")

#: One frame's work: returns (number of faces, milliseconds of each of :data:`STAGES`).
Step = Callable[[np.ndarray], tuple[int, tuple[float, ...]]]


@dataclass(frozen=True)
class Pipeline:
    """A pipeline to time: ``start()`` gives a fresh :data:`Step` for each round (so
    that state such as tracks does not carry from one round into the next)."""

    name: str
    start: Callable[[], Step]


@dataclass(frozen=True)
class StageStats:
    median_ms: float
    p95_ms: float


@dataclass(frozen=True)
class PipelineResult:
    """One pipeline's figures. ``fps`` is the median over rounds; ``vs_reference`` the
    median of the per-round ratios of its fps to the reference's (None without one)."""

    name: str
    frames: int
    faces: int
    fps: float
    ms: dict[str, StageStats] = field(default_factory=dict)
    rounds: int = 1
    round_fps: tuple[float, ...] = ()
    vs_reference: float | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["ms"] = {stage: asdict(stats) for stage, stats in self.ms.items()}
        data["round_fps"] = [round(v, 2) for v in self.round_fps]
        return data


def _stats(values: Iterable[float]) -> StageStats:
    array = np.asarray(list(values), np.float64)
    if not len(array):
        return StageStats(0.0, 0.0)
    return StageStats(float(np.median(array)), float(np.percentile(array, 95)))


def read_frames(path: str | Path, limit: int | None = None) -> list[np.ndarray]:
    """All frames (BGR) of a video file, decoded up front so decoding is not timed."""
    from faceapp.media.sources import open_source

    frames = []
    with open_source(str(path)) as source:
        for frame in source:
            frames.append(frame.image)
            if limit and len(frames) >= limit:
                break
    return frames


def round_orders(count: int, rounds: int) -> list[list[int]]:
    """The order of ``count`` pipelines in each round: forward, then reversed, alternately."""
    forward = list(range(count))
    return [forward if r % 2 == 0 else forward[::-1] for r in range(rounds)]


def alternate(measures: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each measure's result (e.g. ms) in every round: one warm-up call each, then
    ``rounds`` alternating rounds (:func:`round_orders`)."""
    names = list(measures)
    for measure in measures.values():
        measure()  # warm-up
    per_round: dict[str, list[float]] = {name: [] for name in names}
    for order in round_orders(len(names), rounds):
        for index in order:
            per_round[names[index]].append(measures[names[index]]())
    return per_round


def paired_ratio(values: Sequence[float], reference: Sequence[float]) -> float:
    """The median of the per-round ratios ``values[r] / reference[r]``."""
    ratios = [v / r for v, r in zip(values, reference) if r > 0]
    return float(np.median(ratios)) if ratios else float("nan")


def run_pipelines(pipelines: Sequence[Pipeline], frames: list[np.ndarray], rounds: int = 5,
                  reference: str | None = None) -> list[PipelineResult]:
    """Time every pipeline over ``frames`` in ``rounds`` alternating rounds (after one
    warm-up frame each). ``reference``: the name of the pipeline the others are compared to."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if not frames:
        raise ValueError("no frames to time")
    for pipeline in pipelines:
        pipeline.start()(frames[0])  # warm-up (lazy allocations, first-call tracing)
    times = [{stage: [] for stage in (*STAGES, "total")} for _ in pipelines]
    fps: list[list[float]] = [[] for _ in pipelines]
    faces = [0] * len(pipelines)
    for order in round_orders(len(pipelines), rounds):
        for index in order:
            step = pipelines[index].start()
            count_faces = 0
            began_round = time.perf_counter()
            for frame in frames:
                began = time.perf_counter()
                count, stage_ms = step(frame)
                times[index]["total"].append((time.perf_counter() - began) * 1e3)
                for stage, value in zip(STAGES, stage_ms):
                    times[index][stage].append(value)
                count_faces += count
            fps[index].append(len(frames) / (time.perf_counter() - began_round))
            faces[index] = count_faces
    names = [p.name for p in pipelines]
    reference_fps = fps[names.index(reference)] if reference in names else None
    return [
        PipelineResult(
            name=pipeline.name, frames=len(frames), faces=faces[i], fps=float(np.median(fps[i])),
            ms={k: _stats(v) for k, v in times[i].items()}, rounds=rounds, round_fps=tuple(fps[i]),
            vs_reference=None if reference_fps is None else paired_ratio(fps[i], reference_fps),
        )
        for i, pipeline in enumerate(pipelines)
    ]


def _stage_ms(*marks: float) -> tuple[float, ...]:
    """Milliseconds between consecutive ``time.perf_counter()`` marks."""
    return tuple((b - a) * 1e3 for a, b in itertools.pairwise(marks))


def faceapp_pipeline(name: str, process_factory: Callable[[], Callable[[np.ndarray], object]]) -> Pipeline:
    """FaceApp's pipeline: ``process_factory()`` gives ``process(frame) -> FrameResult``
    (e.g. ``recognizer.process``, or a fresh tracking stage's ``process``)."""

    def start() -> Step:
        process = process_factory()

        def step(frame):
            result = process(frame)
            return len(result.faces), tuple(getattr(result.times, stage) for stage in STAGES)

        return step

    return Pipeline(name, start)


REFERENCE_NAME = "opencv-yunet-sface"


def opencv_reference_pipeline(yunet_path: Path, sface_onnx: Path, gallery: np.ndarray | None = None) -> Pipeline:
    """OpenCV's own YuNet + SFace pipeline (match: one matrix product against
    ``gallery`` rows, as an app would)."""
    import cv2

    detector = cv2.FaceDetectorYN.create(str(yunet_path), "", (320, 320), 0.8, 0.3, 5000)
    recognizer = cv2.FaceRecognizerSF.create(str(sface_onnx), "")
    gallery = gallery if gallery is not None and len(gallery) else np.zeros((1, 128), np.float32)

    def step(frame):
        t0 = time.perf_counter()
        detector.setInputSize((frame.shape[1], frame.shape[0]))
        _, faces = detector.detect(frame)
        faces = faces if faces is not None else np.zeros((0, 15), np.float32)
        t1 = time.perf_counter()
        crops = [recognizer.alignCrop(frame, face) for face in faces]
        t2 = time.perf_counter()
        features = [recognizer.feature(crop).reshape(-1) for crop in crops]
        t3 = time.perf_counter()
        if features:
            matrix = np.stack(features)
            matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
            (matrix @ gallery.T).argmax(axis=1)
        return len(faces), _stage_ms(t0, t1, t2, t3, time.perf_counter())

    return Pipeline(REFERENCE_NAME, lambda: step)


def face_recognition_available() -> bool:
    """Whether the optional ``face_recognition`` package (dlib) is installed."""
    import importlib.util

    return importlib.util.find_spec("face_recognition") is not None


def face_recognition_pipeline(known_photos: list[Path] | None = None) -> Pipeline:
    """The ``face_recognition`` package (dlib: HOG detector, 68-landmark alignment, ResNet
    embedding, its own default settings); matching with its ``face_distance`` against
    encodings of ``known_photos``. Its landmarks, alignment and embedding happen in one
    call, timed as "embed" (align is 0)."""
    import face_recognition

    known = []
    for photo in known_photos or []:
        known += face_recognition.face_encodings(face_recognition.load_image_file(str(photo)))[:1]
    gallery = np.array(known) if known else np.zeros((1, 128))

    def step(frame):
        t0 = time.perf_counter()
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        locations = face_recognition.face_locations(rgb)
        t1 = time.perf_counter()
        encodings = face_recognition.face_encodings(rgb, locations)
        t2 = time.perf_counter()
        for encoding in encodings:
            face_recognition.face_distance(gallery, encoding).argmin()
        detect, embed, match = _stage_ms(t0, t1, t2, time.perf_counter())
        return len(locations), (detect, 0.0, embed, match)

    return Pipeline("face_recognition (dlib)", lambda: step)


@dataclass(frozen=True)
class EmbeddingResult:
    """ms per face (median over rounds); ``vs_reference``: median of the per-round
    ratios reference ms / this ms (> 1: faster than OpenCV's DNN)."""

    name: str
    ms_per_face: float
    batch: int
    vs_reference: float | None = None


EMBEDDING_REFERENCE = "OpenCV DNN (same ONNX)"


def embedding_runners(card, sface_onnx: Path | None) -> dict[str, Callable[[np.ndarray], object]]:
    """Every available runtime of the embedding network: ``name -> run(BGR crops)``."""
    from faceapp.embedding.runtime import Embedder

    runners: dict[str, Callable[[np.ndarray], object]] = {
        "faceapp (LiteRT/XNNPACK)": Embedder(card, device="cpu", backend="litert").embed,
        "plain TensorFlow tf.function": Embedder(card, device="cpu", backend="tensorflow").embed,
    }
    if sface_onnx is not None and Path(sface_onnx).is_file():
        import cv2

        net = cv2.dnn.readNet(str(sface_onnx))

        def opencv_dnn(batch: np.ndarray):
            blob = cv2.dnn.blobFromImages(list(batch), 1.0, (112, 112), (0, 0, 0), swapRB=True)
            net.setInput(blob)
            return net.forward()

        runners[EMBEDDING_REFERENCE] = opencv_dnn
    else:
        logger.warning("reference ONNX not found (%s): OpenCV DNN row skipped; run tools/fetch_reference_model.sh", sface_onnx)
    return runners


def bench_embedding(card, crops: np.ndarray, sface_onnx: Path | None, rounds: int = 5) -> list[EmbeddingResult]:
    """ms per face on the same BGR ``(N, 112, 112, 3)`` crops, one face at a time and in
    one batch, for each available runtime, in alternating rounds."""
    runners = embedding_runners(card, sface_onnx)
    names = list(runners)
    results = []
    for batch in (1, len(crops)):
        def call(function, batch=batch):
            start = time.perf_counter()
            for first in range(0, len(crops), batch):
                function(crops[first : first + batch])
            return (time.perf_counter() - start) * 1e3 / len(crops)

        per_round = alternate({name: partial(call, function) for name, function in runners.items()}, rounds)
        reference = per_round.get(EMBEDDING_REFERENCE)
        for name in names:
            ratio = None if reference is None else paired_ratio(reference, per_round[name])
            results.append(EmbeddingResult(name, float(np.median(per_round[name])), batch, ratio))
    return results


def format_pipeline_table(results: list[PipelineResult]) -> str:
    stages = ("detect", "align", "embed", "match", "total")
    header = (f"{'pipeline':<40} {'fps':>7} {'vs OpenCV':>9} {'faces':>6}  "
              + "  ".join(f"{s + ' ms (p50/p95)':>22}" for s in stages))
    lines = [header, "-" * len(header)]
    for result in results:
        cells = "  ".join(f"{result.ms[s].median_ms:>10.2f} / {result.ms[s].p95_ms:<9.2f}" for s in stages)
        ratio = f"{result.vs_reference:>8.2f}x" if result.vs_reference is not None else f"{'n/a':>9}"
        lines.append(f"{result.name:<40} {result.fps:>7.1f} {ratio} {result.faces:>6}  {cells}")
    rounds = results[0].rounds if results else 0
    lines.append(f"(fps: median of {rounds} alternating rounds; vs OpenCV: median of the per-round fps ratios)")
    return "\n".join(lines)


def format_embedding_table(results: list[EmbeddingResult]) -> str:
    lines = [f"{'embedding runtime':<32} {'batch':>5} {'ms/face':>9} {'vs OpenCV DNN':>14}", "-" * 64]
    for r in results:
        ratio = f"{r.vs_reference:>13.2f}x" if r.vs_reference is not None else f"{'n/a':>14}"
        lines.append(f"{r.name:<32} {r.batch:>5} {r.ms_per_face:>9.2f} {ratio}")
    lines.append("(ratio > 1: faster than OpenCV's DNN on the same network and crops; median of per-round ratios)")
    return "\n".join(lines)
