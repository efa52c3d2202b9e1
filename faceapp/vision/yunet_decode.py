"""YuNet's post-processing in numpy: anchors, decoding, score threshold and NMS.

The same arithmetic as OpenCV's ``cv::FaceDetectorYN`` (``modules/objdetect/src/face_detect.cpp``,
OpenCV 4.8 and later), so that our detector finds the same faces with the same boxes:

* one anchor per cell of the stride-8, 16 and 32 grids of the padded input, in that
  order, row by row;
* score = sqrt(clip(cls, 0, 1) * clip(obj, 0, 1)); anchors below the threshold dropped;
* box centre ``((col + dx) * s, (row + dy) * s)``, size ``(exp(dw) * s, exp(dh) * s)``;
  landmark ``n`` at ``((col + kx_n) * s, (row + ky_n) * s)``;
* NMS as ``cv::dnn::NMSBoxes``: candidates above the threshold, stably sorted by score,
  at most ``top_k``, each kept unless its IoU with a kept one exceeds ``nms_threshold``;
  IoU on the boxes truncated to integers (OpenCV builds ``Rect2i`` from them).

Input: the network's three maps ``(H/s, W/s, 16)`` (see :mod:`faceapp.vision.yunet_net`).
Output: float32 ``(K, 15)`` rows ``x, y, w, h, 5 x (x, y) landmarks, score`` in the padded
input's pixels, best first -- the layout of ``cv2.FaceDetectorYN.detect``.
"""

from __future__ import annotations

import numpy as np

from faceapp.vision.yunet_net import STRIDES


def _grid(rows: int, cols: int) -> np.ndarray:
    """float32 ``(rows * cols, 2)``: each anchor's (col, row), row by row."""
    r, c = np.divmod(np.arange(rows * cols, dtype=np.int64), cols)
    return np.stack([c, r], axis=1).astype(np.float32)


class Decoder:
    """Decodes the maps of one padded input size; the anchor grids are made once per size."""

    def __init__(self, score_threshold: float, nms_threshold: float, top_k: int):
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self._grids: dict[tuple[int, int], list[np.ndarray]] = {}

    def _anchors(self, maps: list[np.ndarray]) -> list[np.ndarray]:
        key = tuple(m.shape[:2] for m in maps)
        grids = self._grids.get(key)
        if grids is None:  # one size kept; a local reference, so another thread's swap is harmless
            grids = [_grid(rows, cols) for rows, cols in key]
            self._grids = {key: grids}
        return grids

    def __call__(self, maps: list[np.ndarray]) -> np.ndarray:
        """``maps``: the three ``(H/s, W/s, 16)`` maps (any leading batch axis of 1 dropped)."""
        maps = [np.asarray(m, np.float32).reshape(m.shape[-3], m.shape[-2], m.shape[-1]) for m in maps]
        rows = []
        for values, grid, stride in zip(maps, self._anchors(maps), STRIDES, strict=True):
            flat = values.reshape(-1, values.shape[-1])
            score = np.sqrt(np.clip(flat[:, 0], 0, 1) * np.clip(flat[:, 1], 0, 1))
            keep = np.flatnonzero(score >= self.score_threshold)
            if not len(keep):
                continue
            f, g = flat[keep], grid[keep]
            centre = (g + f[:, 2:4]) * stride
            size = np.exp(f[:, 4:6]) * stride
            landmarks = ((g[:, None, :] + f[:, 6:16].reshape(-1, 5, 2)) * stride).reshape(-1, 10)
            rows.append(np.concatenate([centre - size / 2, size, landmarks, score[keep, None]], axis=1))
        if not rows:
            return np.zeros((0, 15), np.float32)
        faces = np.concatenate(rows).astype(np.float32)
        if len(faces) > 1:
            faces = faces[nms(faces[:, :4], faces[:, 14], self.score_threshold, self.nms_threshold, self.top_k)]
        return faces


def nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, nms_threshold: float, top_k: int) -> np.ndarray:
    """int64 indices kept by ``cv::dnn::NMSBoxes`` for float ``(K, 4)`` ``(x, y, w, h)``
    boxes and ``(K,)`` scores, best first (see the module docstring)."""
    candidates = np.flatnonzero(scores > score_threshold)
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    if 0 <= top_k < len(order):
        order = order[:top_k]
    rect = np.trunc(boxes[order]).astype(np.int64)  # C's float-to-int conversion, as Rect2i(int(x), ...)
    x1, y1 = rect[:, 0], rect[:, 1]
    x2, y2 = x1 + rect[:, 2], y1 + rect[:, 3]
    area = rect[:, 2] * rect[:, 3]
    kept: list[int] = []
    for i in range(len(order)):
        if kept:
            k = np.asarray(kept)
            width = np.minimum(x2[i], x2[k]) - np.maximum(x1[i], x1[k])
            height = np.minimum(y2[i], y2[k]) - np.maximum(y1[i], y1[k])
            inter = np.where((width > 0) & (height > 0), width * height, 0)
            union = area[i] + area[k] - inter
            overlap = np.where(area[i] + area[k] > 0, inter / np.maximum(union, 1e-12), 1.0)
            if (overlap > nms_threshold).any():
                continue
        kept.append(i)
    return order[np.asarray(kept, np.int64)] if kept else np.zeros(0, np.int64)
