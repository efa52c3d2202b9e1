"""``faceapp bench``'s detector rows: milliseconds per frame of YuNet through OpenCV's DNN
and through our TensorFlow port (LiteRT on the CPU), on the same frames at several sizes,
in alternating rounds (see :mod:`faceapp.evaluation.speed`); and ours at the working
resolution of video frames (what the live loop runs).

The frames are the bench's own (the fixture video or ``--video``), resized to each size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from faceapp.evaluation.speed import alternate, paired_ratio

SIZES = ((640, 360), (640, 480), (1280, 720))
REFERENCE = "OpenCV DNN"


@dataclass(frozen=True)
class DetectorRow:
    """``ms``: median over rounds of the mean ms per frame; ``speedup``: the median of the
    per-round ratios of the reference's ms to this row's (> 1: faster than OpenCV's DNN)."""

    size: tuple[int, int]
    name: str
    ms: float
    faces: int
    speedup: float | None

    def to_json(self) -> dict:
        return {"size": list(self.size), "detector": self.name, "ms_per_frame": round(self.ms, 3), "faces": self.faces,
                "vs_opencv": None if self.speedup is None else round(self.speedup, 3)}


def bench_detectors(detectors: dict[str, Callable[[np.ndarray], list]], frames: Sequence[np.ndarray], *,
                    sizes: Sequence[tuple[int, int]] = SIZES, rounds: int = 5) -> list[DetectorRow]:
    """``detectors``: name -> ``detect(frame) -> detections``; one of them named
    :data:`REFERENCE`. Each size's rows come from one alternating run over ``frames``
    resized to that size (BGR uint8)."""
    import cv2

    rows = []
    for width, height in sizes:
        resized = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames]
        found: dict[str, int] = {}

        def timed(detect, name, resized=resized, found=found):
            began = time.perf_counter()
            found[name] = sum(len(detect(frame)) for frame in resized)
            return (time.perf_counter() - began) * 1e3 / len(resized)

        per_round = alternate({name: (lambda d=detect, n=name: timed(d, n)) for name, detect in detectors.items()}, rounds)
        reference = per_round.get(REFERENCE)
        for name, laps in per_round.items():
            speedup = None if reference is None else paired_ratio(reference, laps)
            rows.append(DetectorRow((width, height), name, float(np.median(laps)), found[name], speedup))
    return rows


def format_detector_table(rows: list[DetectorRow]) -> str:
    lines = [f"{'frame':>9}  {'detector':<52} {'ms/frame':>9} {'faces':>6} {'vs OpenCV DNN':>14}", "-" * 96]
    for r in rows:
        ratio = f"{r.speedup:>13.2f}x" if r.speedup is not None else f"{'n/a':>14}"
        lines.append(f"{r.size[0]:>4}x{r.size[1]:<4}  {r.name:<52} {r.ms:>9.2f} {r.faces:>6} {ratio}")
    lines.append("(ms: median of alternating rounds; vs OpenCV DNN: median of the per-round ratios, > 1 is faster)")
    return "\n".join(lines)
