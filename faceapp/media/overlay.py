"""Drawing recognition results on frames (OpenCV, BGR), for files and snapshots."""

from __future__ import annotations

import numpy as np

from faceapp.types import FrameResult

KNOWN_COLOUR = (80, 200, 60)  # BGR green
UNKNOWN_COLOUR = (40, 60, 230)  # BGR red
POOR_VIEW_COLOUR = (150, 150, 150)  # BGR grey: a face seen only in views too poor to judge yet


def label_for(name: str | None, similarity: float, track_id: int | None = None, unknown: str = "Unknown",
              visitor: int | None = None) -> str:
    """``"#3 obama 0.71"``: the track id, the name (``unknown`` when there is none, or
    ``Unknown #12`` for a remembered unknown visitor), the similarity."""
    prefix = f"#{track_id} " if track_id is not None else ""
    if name:
        return f"{prefix}{name} {similarity:.2f}"
    return f"{prefix}{unknown}" + (f" #{visitor}" if visitor is not None else f" {similarity:.2f}")


def draw_results(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """A copy of ``image`` (BGR uint8) with a box and label per face: green and the name,
    red and "Unknown", or grey and "poor view" for a face not judged yet (``FaceResult.judged``
    False: seen only in views too poor to name anyone, as the live view draws it)."""
    import cv2

    canvas = image.copy()
    scale = max(0.5, min(canvas.shape[:2]) / 900)
    thickness = max(1, round(2 * scale))
    for face in result.faces:
        x, y, w, h = (round(v) for v in face.detection.box)
        poor = not face.match.name and not face.judged
        colour = KNOWN_COLOUR if face.match.name else POOR_VIEW_COLOUR if poor else UNKNOWN_COLOUR
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        if poor:
            text = (f"#{face.track_id} " if face.track_id is not None else "") + "poor view"
        else:
            text = label_for(face.match.name, face.match.similarity, face.track_id, visitor=face.visitor)
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thickness)
        top = max(0, y - th - baseline - 4)
        cv2.rectangle(canvas, (x, top), (x + tw + 4, top + th + baseline + 4), colour, -1)
        cv2.putText(canvas, text, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return canvas
