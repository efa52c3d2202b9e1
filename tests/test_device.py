"""Device choice for the embedding network, with injected GPU probes (no GPU needed)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from faceapp.accel import device as device_module
from faceapp.accel.device import DEVICES, DeviceChoice, choose_device
from faceapp.errors import ModelError


class Probe:
    """Fake ``list_gpus`` / ``enable_memory_growth`` that record their calls."""

    def __init__(self, gpus):
        self.gpus = list(gpus)
        self.listed = 0
        self.grown: list = []

    def list_gpus(self):
        self.listed += 1
        return self.gpus

    def enable_memory_growth(self, gpus):
        self.grown.append(list(gpus))

    def choose(self, requested):
        return choose_device(requested, list_gpus=self.list_gpus, enable_memory_growth=self.enable_memory_growth)


def test_auto_takes_the_gpu_and_turns_memory_growth_on():
    probe = Probe(["GPU:0", "GPU:1"])
    choice = probe.choose("auto")
    assert choice == DeviceChoice("gpu", "/GPU:0", choice.reason)
    assert "2 GPU" in choice.reason
    assert probe.grown == [["GPU:0", "GPU:1"]]


def test_auto_falls_back_to_the_cpu_and_says_so(caplog):
    probe = Probe([])
    with caplog.at_level(logging.INFO, logger="faceapp.accel.device"):
        choice = probe.choose("auto")
    assert (choice.kind, choice.tf_device) == ("cpu", "/CPU:0")
    assert probe.grown == []
    assert any("CPU" in record.getMessage() for record in caplog.records)


def test_cpu_forced_does_not_even_look_for_gpus():
    probe = Probe(["GPU:0"])
    choice = probe.choose("cpu")
    assert (choice.kind, choice.tf_device) == ("cpu", "/CPU:0")
    assert probe.listed == 0 and probe.grown == []


def test_gpu_requested_and_present():
    probe = Probe(["GPU:0"])
    assert probe.choose("gpu").kind == "gpu"
    assert probe.grown == [["GPU:0"]]


def test_gpu_requested_but_none_is_a_model_error():
    probe = Probe([])
    with pytest.raises(ModelError, match="GPU was requested"):
        probe.choose("gpu")


@pytest.mark.parametrize("requested", ["GPU", "cuda", "", "tpu"])
def test_unknown_device_is_a_model_error(requested):
    with pytest.raises(ModelError, match="device must be one of"):
        Probe([]).choose(requested)


def test_device_names():
    assert DEVICES == ("auto", "cpu", "gpu")


def test_no_driver_means_no_tensorflow_import(monkeypatch):
    """Without an NVIDIA driver the real probe answers [] without importing TensorFlow."""
    assert isinstance(device_module.nvidia_driver_present(), bool)
    monkeypatch.setattr(device_module, "nvidia_driver_present", lambda: False)
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # importing it would fail
    assert device_module._list_gpus() == []


def test_embedder_propagates_a_missing_gpu(sface_recognizer, monkeypatch):
    from faceapp.embedding import runtime

    monkeypatch.setattr(runtime, "choose_device", lambda requested: choose_device(requested, list_gpus=list))
    with pytest.raises(ModelError, match="GPU was requested"):
        runtime.Embedder(sface_recognizer.card, device="gpu")
    with pytest.raises(ModelError, match="backend must be one of"):
        runtime.Embedder(sface_recognizer.card, device="cpu", backend="onnx")


def test_cpu_embedder_runs_litert(sface_recognizer):
    assert sface_recognizer.embedder.choice.kind == "cpu"
    assert sface_recognizer.embedder.backend == "litert"
    assert sface_recognizer.embedder.device_name == "CPU (LiteRT/XNNPACK)"


def _gpus() -> list:
    if not device_module.nvidia_driver_present():
        return []
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def test_gpu_embedding_equals_cpu(sface_recognizer, fixture_faces):
    """On a machine with a GPU: auto picks it, and its embeddings equal LiteRT's on the CPU."""
    if not _gpus():
        pytest.skip("no GPU visible to TensorFlow on this machine")
    from faceapp.embedding.runtime import Embedder

    gpu = Embedder(sface_recognizer.card, device="auto")
    assert gpu.choice.kind == "gpu" and gpu.backend == "tensorflow"
    assert gpu.device_name == "GPU:0 (TensorFlow)"
    crops = np.stack([
        sface_recognizer.align(image, detections)[0].image
        for image, detections in fixture_faces.values()
        if detections
    ])
    np.testing.assert_allclose(gpu.embed(crops), sface_recognizer.embedder.embed(crops), atol=1e-4)


def test_missing_litert_falls_back_to_tensorflow(monkeypatch, caplog):
    from faceapp.embedding import runtime
    from faceapp.embedding.modelcard import load_card

    monkeypatch.setattr(runtime, "litert_available", lambda: False)
    embedder = runtime.Embedder(load_card("sface"), device="cpu")
    assert embedder.backend == "tensorflow"
    assert "LiteRT is not installed" in caplog.text
    with pytest.raises(runtime.ModelError, match="LiteRT runtime is not installed"):
        runtime.Embedder(load_card("sface"), device="cpu", backend="litert")
