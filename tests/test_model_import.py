"""``faceapp model import``: an ONNX embedding model becomes a model directory.

The SFace tests need OpenCV Zoo's ONNX file (``FACEAPP_SFACE_ONNX``, or
``tools/fetch_reference_model.sh``): they skip without it, and fail under CI=true
(the ``sface_onnx`` fixture). The refusals use tiny graphs built here with onnx's helper API.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ok, refused, run_here

from faceapp.embedding.modelcard import load_card
from faceapp.recognition.pipeline import PipelineConfig, Recognizer

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

TOLERANCE = 1e-4


def leaves_nothing(folder: Path, out: Path) -> None:
    """A refused import writes neither the model directory nor a staging folder."""
    assert not out.exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(f".{out.name}-")]


@pytest.fixture(scope="module")
def check_crops(sface_recognizer, fixture_faces) -> np.ndarray:
    crops = [face.image for image, detections in fixture_faces.values() for face in sface_recognizer.align(image, detections)]
    return np.stack(crops)


@pytest.fixture(scope="module")
def imported_sface(sface_onnx, tmp_path_factory, sface_recognizer):
    """The reference SFace ONNX file imported once (the CLI, in this process)."""
    from faceapp.cli.main import main

    out = tmp_path_factory.mktemp("imported") / "sface-mine"
    assert main(["model", "import", str(sface_onnx), "--out", str(out), "--license", "Apache-2.0", "--name", "sface-mine"]) == 0
    return out


def test_sface_import_equals_the_shipped_model(imported_sface, sface_onnx, sface_recognizer, check_crops):
    card = load_card(imported_sface)
    assert card.model_id == "sface-mine" and card.architecture == "sface" and card.embedding_dim == 128
    assert card.license == "Apache-2.0"
    assert card.threshold_presets == sface_recognizer.card.threshold_presets  # the same embeddings: the same presets
    data = json.loads((imported_sface / "sface-mine.json").read_text())
    assert data["provenance"]["opencv_zoo_sface_2021dec"] is True and len(data["provenance"]["source_sha256"]) == 64
    assert max(data["import_check"]["max_abs_difference_unit_embeddings"].values()) < TOLERANCE
    assert sorted(p.name for p in imported_sface.iterdir()) == ["sface-mine.json", "sface-mine.weights.h5"]

    mine = Recognizer.create(PipelineConfig(model_dir=imported_sface, device="cpu"))
    assert mine.embedder.model_id == "sface-mine"
    ours, shipped = mine.embedder.embed(check_crops), sface_recognizer.embedder.embed(check_crops)
    assert np.abs(ours - shipped).max() < TOLERANCE


def test_the_written_directory_works_with_model_option(imported_sface, fixtures_dir, capfd, tmp_path):
    """Every command takes it with --model DIR (here: enroll, then identify)."""
    gallery = tmp_path / "g.sqlite3"
    g = ("--model", imported_sface, "--gallery", gallery, "--device", "cpu")
    ok(run_here(capfd, *g, "enroll", "obama", *sorted((fixtures_dir / "obama").glob("*.jpg"))[:2]))
    ok(run_here(capfd, *g, "enroll", "biden", fixtures_dir / "biden" / "biden_1.jpg"))
    result = ok(run_here(capfd, *g, "identify", fixtures_dir / "obama" / "obama_4.jpg"))
    assert "obama" in result.stdout


@pytest.mark.parametrize("kind", ["text", "truncated", "empty"])
def test_a_bad_file_is_refused_in_one_line(kind, capfd, tmp_path):
    source = tmp_path / "model.onnx"
    if kind == "text":
        source.write_text("not a model\n")
    elif kind == "truncated":
        source.write_bytes(tiny_conv_net().SerializeToString()[:200])
    else:
        source.write_bytes(b"")
    out = tmp_path / "out"
    refused(run_here(capfd, "model", "import", source, "--out", out, "--license", "MIT"), "model.onnx")
    leaves_nothing(tmp_path, out)


def tiny_conv_net():
    """A small ArcFace-shaped net (1x3x112x112 -> 8) that is not SFace: Conv, BN, PRelu,
    GlobalAveragePool, Flatten, Gemm."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(name, shape):
        return numpy_helper.from_array(rng.normal(size=shape).astype(np.float32) * 0.1, name)

    inits = [init("w", (4, 3, 3, 3)), init("b", (4,)), init("g", (4,)), init("beta", (4,)), init("m", (4,)),
             numpy_helper.from_array(np.ones(4, np.float32), "v"), init("slope", (4, 1, 1)),
             init("fc_w", (8, 4)), init("fc_b", (8,))]
    nodes = [
        helper.make_node("Conv", ["data", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "m", "v"], ["n"]),
        helper.make_node("PRelu", ["n", "slope"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["embedding"], transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_an_unsupported_architecture_is_refused_in_one_line(capfd, tmp_path):
    import onnxruntime

    source = tmp_path / "tiny.onnx"
    source.write_bytes(tiny_conv_net().SerializeToString())
    session = onnxruntime.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    assert session.run(None, {"data": np.zeros((1, 3, 112, 112), np.float32)})[0].shape == (1, 8)  # a valid model
    out = tmp_path / "out"
    refused(run_here(capfd, "model", "import", source, "--out", out, "--license", "MIT"),
            "unsupported architecture", "sface", "onnx2tf")
    leaves_nothing(tmp_path, out)


@pytest.mark.parametrize("license_text", ["", "not stated", "Unknown"])
def test_the_licence_must_be_stated(license_text, capfd, tmp_path):
    source = tmp_path / "tiny.onnx"
    source.write_bytes(tiny_conv_net().SerializeToString())
    refused(run_here(capfd, "model", "import", source, "--out", tmp_path / "out", "--license", license_text), "--license")
    leaves_nothing(tmp_path, tmp_path / "out")


def test_an_existing_folder_is_not_overwritten(capfd, tmp_path):
    source = tmp_path / "tiny.onnx"
    source.write_bytes(tiny_conv_net().SerializeToString())
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    refused(run_here(capfd, "model", "import", source, "--out", out, "--license", "MIT"), "not an empty folder")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.fixture(scope="module")
def changed_sface(sface_onnx, tmp_path_factory) -> Path:
    """SFace's layers with other weights (as a fine-tuned SFace would be): its own embeddings."""
    from onnx import numpy_helper

    model = onnx.load(str(sface_onnx))
    for init in model.graph.initializer:
        if init.name == "pre_fc1_bias":
            bias = numpy_helper.to_array(init).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(bias + np.random.default_rng(1).normal(size=bias.shape).astype(np.float32), init.name))
    path = tmp_path_factory.mktemp("changed") / "sface_tuned.onnx"
    onnx.save(model, str(path))
    return path


def tiny_lfw(lfw_dir: Path, folder: Path) -> Path:
    """The first 3 same-person and 3 different-person pairs of 2 folds of LFW."""
    lines = [line for line in (lfw_dir / "pairs.txt").read_text().splitlines()[1:] if line.strip()]
    per_fold = int((lfw_dir / "pairs.txt").read_text().split()[1])
    chosen = []
    for fold in range(2):
        start = fold * 2 * per_fold
        chosen += lines[start : start + 3] + lines[start + per_fold : start + per_fold + 3]
    folder.mkdir()
    (folder / "pairs.txt").write_text("2\t3\n" + "\n".join(chosen) + "\n")
    (folder / "images").symlink_to(lfw_dir / "images")
    return folder


def test_other_embeddings_need_lfw_calibration(changed_sface, sface_recognizer, lfw_dir, capfd, tmp_path):
    out = tmp_path / "tuned"
    refused(run_here(capfd, "model", "import", changed_sface, "--out", out, "--license", "Apache-2.0"), "--lfw")
    leaves_nothing(tmp_path, out)

    result = ok(run_here(capfd, "model", "import", changed_sface, "--out", out, "--license", "Apache-2.0",
                         "--lfw", tiny_lfw(lfw_dir, tmp_path / "lfw")))
    assert "LFW (12 pairs)" in result.stdout
    card = load_card(out)
    assert card.model_id == "sface_tuned" and set(card.threshold_presets) == {"strict", "balanced", "lenient"}
    assert card.threshold_presets != sface_recognizer.card.threshold_presets
    data = json.loads((out / "sface_tuned.json").read_text())
    assert data["provenance"]["opencv_zoo_sface_2021dec"] is False and "open_set" not in data
    assert data["import_check"]["max_abs_difference_to_shipped_sface"] > TOLERANCE
