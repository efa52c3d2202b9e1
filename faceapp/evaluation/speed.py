"""Speed measurements, printed side by side with references measured in the same run.

These machines are noisy: read the *ratios* between rows, not the absolute times.

* ``pipeline``: per-stage milliseconds (median and 95th percentile) of FaceApp's
  pipeline over the frames of a video, next to OpenCV's own YuNet + SFace pipeline
  (``cv2.FaceDetectorYN`` + ``cv2.FaceRecognizerSF.alignCrop/feature``) on the same frames.
* ``embedding``: milliseconds per face of the embedding CNN alone on the same aligned
  crops: FaceApp's runtime (LiteRT on CPU), plain TensorFlow, and OpenCV's DNN running
  OpenCV Zoo's ONNX file of the same network.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageStats:
    median_ms: float
    p95_ms: float


@dataclass(frozen=True)
class PipelineResult:
    """One pipeline's figures: frames per second and per-stage statistics."""

    name: str
    frames: int
    faces: int
    fps: float
    ms: dict[str, StageStats] = field(default_factory=dict)

    def to_json(self) -> dict:
        data = asdict(self)
        data["ms"] = {stage: asdict(stats) for stage, stats in self.ms.items()}
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


STAGES = ("detect", "align", "embed", "match")


def _timed_run(name: str, frames: list[np.ndarray], step: Callable[[np.ndarray], tuple[int, tuple[float, ...]]]) -> PipelineResult:
    """Run ``step`` on every frame (after one warm-up call) and gather its statistics.

    ``step(frame)`` returns (number of faces, milliseconds of each of :data:`STAGES`);
    the total is measured around the call.
    """
    step(frames[0])
    times: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
    faces = 0
    start = time.perf_counter()
    for frame in frames:
        began = time.perf_counter()
        count, stage_ms = step(frame)
        times["total"].append((time.perf_counter() - began) * 1e3)
        for stage, value in zip(STAGES, stage_ms):
            times[stage].append(value)
        faces += count
    elapsed = time.perf_counter() - start
    return PipelineResult(name, len(frames), faces, len(frames) / elapsed, {k: _stats(v) for k, v in times.items()})


def bench_faceapp(process: Callable[[np.ndarray], object], frames: list[np.ndarray], name: str = "faceapp") -> PipelineResult:
    """Time ``process`` (``Recognizer.process``: full per-frame recognition, or
    ``LiveRecognizer.process``: tracking on) over ``frames``."""

    def step(frame):
        result = process(frame)
        return len(result.faces), tuple(getattr(result.times, stage) for stage in STAGES)

    return _timed_run(name, frames, step)


def _stage_ms(*marks: float) -> tuple[float, ...]:
    """Milliseconds between consecutive ``time.perf_counter()`` marks."""
    return tuple((b - a) * 1e3 for a, b in zip(marks, marks[1:]))


def bench_opencv_reference(yunet_path: Path, sface_onnx: Path, frames: list[np.ndarray], gallery: np.ndarray | None = None) -> PipelineResult:
    """OpenCV's own YuNet + SFace pipeline on the same frames (match: one matrix product
    against ``gallery`` rows, as an app would)."""
    import cv2

    height, width = frames[0].shape[:2]
    detector = cv2.FaceDetectorYN.create(str(yunet_path), "", (width, height), 0.8, 0.3, 5000)
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

    return _timed_run("opencv-yunet-sface", frames, step)


def face_recognition_available() -> bool:
    """Whether the optional ``face_recognition`` package (dlib) is installed."""
    import importlib.util

    return importlib.util.find_spec("face_recognition") is not None


def bench_face_recognition(frames: list[np.ndarray], known_photos: list[Path] | None = None) -> PipelineResult:
    """The ``face_recognition`` package (dlib: HOG detector, 68-landmark alignment, ResNet
    embedding, its own default settings) on the same frames; matching with its
    ``face_distance`` against encodings of ``known_photos``. Its landmarks, alignment and
    embedding happen in one call, timed as "embed" (align is 0)."""
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

    return _timed_run("face_recognition (dlib)", frames, step)


@dataclass(frozen=True)
class EmbeddingResult:
    name: str
    ms_per_face: float
    batch: int


def _time_per_face(function: Callable[[np.ndarray], object], crops: np.ndarray, repeats: int) -> float:
    function(crops)  # warm-up (and any lazy allocation)
    best = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(crops)
        best.append((time.perf_counter() - start) * 1e3 / len(crops))
    return float(np.median(best))


def bench_embedding(card, crops: np.ndarray, sface_onnx: Path | None, repeats: int = 5) -> list[EmbeddingResult]:
    """ms per face on the same BGR ``(N, 112, 112, 3)`` crops, one face at a time and in
    one batch, for each runtime that is available."""
    from faceapp.embedding.runtime import Embedder

    results = []
    runners: dict[str, Callable[[np.ndarray], object]] = {}
    litert = Embedder(card, device="cpu", backend="litert")
    runners["faceapp (LiteRT/XNNPACK)"] = litert.embed
    tensorflow = Embedder(card, device="cpu", backend="tensorflow")
    runners["plain TensorFlow tf.function"] = tensorflow.embed
    if sface_onnx is not None and Path(sface_onnx).is_file():
        import cv2

        net = cv2.dnn.readNet(str(sface_onnx))

        def opencv_dnn(batch: np.ndarray):
            blob = cv2.dnn.blobFromImages(list(batch), 1.0, (112, 112), (0, 0, 0), swapRB=True)
            net.setInput(blob)
            return net.forward()

        runners["OpenCV DNN (same ONNX)"] = opencv_dnn
    else:
        logger.warning("reference ONNX not found (%s): OpenCV DNN row skipped; run tools/fetch_reference_model.sh", sface_onnx)
    for name, function in runners.items():
        one_at_a_time = _time_per_face(lambda c, f=function: [f(c[i : i + 1]) for i in range(len(c))], crops, repeats)
        results.append(EmbeddingResult(name, one_at_a_time, 1))
        results.append(EmbeddingResult(name, _time_per_face(function, crops, repeats), len(crops)))
    return results


def format_pipeline_table(results: list[PipelineResult]) -> str:
    stages = ("detect", "align", "embed", "match", "total")
    header = f"{'pipeline':<34} {'fps':>7} {'faces':>6}  " + "  ".join(f"{s + ' ms (p50/p95)':>22}" for s in stages)
    lines = [header, "-" * len(header)]
    for result in results:
        cells = "  ".join(f"{result.ms[s].median_ms:>10.2f} / {result.ms[s].p95_ms:<9.2f}" for s in stages)
        lines.append(f"{result.name:<34} {result.fps:>7.1f} {result.faces:>6}  {cells}")
    return "\n".join(lines)


def format_embedding_table(results: list[EmbeddingResult]) -> str:
    reference = {r.batch: r.ms_per_face for r in results if r.name.startswith("OpenCV")}
    lines = [f"{'embedding runtime':<32} {'batch':>5} {'ms/face':>9} {'vs OpenCV DNN':>14}", "-" * 64]
    for r in results:
        ratio = f"{reference[r.batch] / r.ms_per_face:>13.2f}x" if r.batch in reference else f"{'n/a':>14}"
        lines.append(f"{r.name:<32} {r.batch:>5} {r.ms_per_face:>9.2f} {ratio}")
    lines.append("(ratio > 1: faster than OpenCV's DNN on the same network and crops)")
    return "\n".join(lines)
