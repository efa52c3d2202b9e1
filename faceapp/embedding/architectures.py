"""The embedding networks an :class:`~faceapp.embedding.runtime.Embedder` can run.

Each :class:`Architecture` says what the network eats (the crop's side, how the app's
BGR uint8 crops become its input) and how to build it: the trainable Keras model that
carries the weights file, and the inference model that runs (batch norms folded). A
model card's ``architecture`` names one of :data:`ARCHITECTURES`:

* ``sface``: OpenCV Zoo's SFace (:mod:`faceapp.embedding.sface`), 112 x 112 crops aligned
  to the ArcFace 5-point template;
* ``dlib_resnet``: dlib's face recognition ResNet v1 (:mod:`faceapp.embedding.dlib_resnet`),
  150 x 150 chips as dlib cuts them (:mod:`faceapp.vision.dlib_align`);
* ``onnx_graph``: an ArcFace-style ONNX model converted layer by layer by ``faceapp model
  import`` (:mod:`faceapp.embedding.onnx_graph`), 112 x 112 aligned crops in as RGB 0..255
  (the graph's own scaling is part of it). Its weights file is a whole ``.keras`` model
  (the graph is the file's, not ours), opened by ``load_trainable``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ARCHITECTURES", "Architecture", "architecture"]


@dataclass(frozen=True)
class Architecture:
    """One embedding network.

    Attributes:
        name: the model card's ``architecture``.
        input_size: the crop's side in pixels (square crops).
        version: bumped when the layer graph changes (cached conversions are rebuilt).
        to_input: BGR uint8 ``(N, S, S, 3)`` crops -> the network's float32 input.
        build_trainable: () -> the Keras model the weights file belongs to.
        build_inference: (trainable model, dtype policy or None) -> the model that runs.
        mixed_precision: whether ``build_inference`` honours a dtype policy.
        load_trainable: (weights file) -> the trainable model, for an architecture whose
            weights file holds the whole model (then ``build_trainable`` is not used).
    """

    name: str
    input_size: int
    version: int
    to_input: Callable[[np.ndarray], np.ndarray]
    build_trainable: Callable[[], Any]
    build_inference: Callable[[Any, str | None], Any]
    mixed_precision: bool = True
    load_trainable: Callable[[Path], Any] | None = None


def _sface() -> Architecture:
    from faceapp.embedding import sface

    return Architecture("sface", sface.INPUT_SIZE, sface.ARCHITECTURE_VERSION, sface.to_model_input, sface.build_sface,
                        lambda trained, policy: sface.build_inference_sface(trained, dtype_policy=policy))


def _dlib_resnet() -> Architecture:
    from faceapp.embedding import dlib_resnet

    # The weights file already holds dlib's affine layers folded into the convolutions.
    return Architecture("dlib_resnet", dlib_resnet.INPUT_SIZE, dlib_resnet.ARCHITECTURE_VERSION, dlib_resnet.to_model_input,
                        dlib_resnet.build_dlib_resnet, lambda trained, policy: trained, mixed_precision=False)


def _onnx_graph() -> Architecture:
    from faceapp.embedding import onnx_graph, sface

    def no_builder():
        raise NotImplementedError("an onnx_graph model is the whole .keras file its card names (load_trainable)")

    # Inference runs the converted graph as it is (LiteRT's converter folds its batch norms).
    return Architecture("onnx_graph", onnx_graph.INPUT_SIZE, onnx_graph.ARCHITECTURE_VERSION, sface.to_model_input,
                        no_builder, lambda trained, policy: trained, mixed_precision=False,
                        load_trainable=onnx_graph.load_keras_file)


#: Name -> a function making the :class:`Architecture` (the modules load lazily).
ARCHITECTURES: dict[str, Callable[[], Architecture]] = {"sface": _sface, "dlib_resnet": _dlib_resnet, "onnx_graph": _onnx_graph}


def architecture(name: str) -> Architecture:
    """The architecture a model card names; KeyError for an unknown one."""
    return ARCHITECTURES[name]()
