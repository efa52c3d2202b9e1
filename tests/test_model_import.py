"""``faceapp model import``: an ONNX embedding model becomes a model directory.

The SFace tests need OpenCV Zoo's ONNX file (``FACEAPP_SFACE_ONNX``, or
``tools/fetch_reference_model.sh``): they skip without it, and fail under CI=true
(the ``sface_onnx`` fixture). A small second architecture, built here with onnx's helper
API, is imported by the generic converter (calibrated on 12 LFW pairs); the refusals use it too.
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


def tiny_conv_net(extra_nodes=(), output_shape=(1, 8), extra_inits=()):
    """A small ArcFace-shaped net (1x3x112x112 -> 8) that is not SFace: input scaling
    (Sub, Mul), Conv + BatchNormalization + PRelu, a depthwise Conv + BN + Clip (Relu6),
    a pointwise Conv, a residual Add, MaxPool, then two heads -- GlobalAveragePool and
    Flatten + Gemm of the 7x7 map (NCHW flatten order) -- concatenated, and a MatMul.
    ``extra_nodes`` are appended (the MatMul's output is then "pre", theirs "embedding")."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(name, shape, scale=0.1):
        return numpy_helper.from_array((rng.normal(size=shape) * scale).astype(np.float32), name)

    def variance(name, shape):
        return numpy_helper.from_array(rng.uniform(0.5, 1.5, size=shape).astype(np.float32), name)

    scalar = lambda value, name: numpy_helper.from_array(np.array(value, np.float32), name)
    inits = [scalar(127.5, "mean"), scalar(1 / 128, "scale"), scalar(0.0, "lo"), scalar(6.0, "hi"),
             init("w", (8, 3, 3, 3)), init("b", (8,)), init("g", (8,)), init("beta", (8,)), init("m", (8,)), variance("v", (8,)),
             init("slope", (8, 1, 1)), init("dw", (8, 1, 3, 3), 0.3), init("dw_b", (8,)), init("g2", (8,)), init("beta2", (8,)),
             init("m2", (8,)), variance("v2", (8,)), init("pw", (8, 8, 1, 1), 0.3), init("down", (8, 8, 3, 3), 0.2),
             init("fc_w", (8, 8 * 7 * 7), 0.05), init("fc_b", (8,)), init("head", (16, 8), 0.3), *extra_inits]
    nodes = [
        helper.make_node("Sub", ["data", "mean"], ["centred"]),
        helper.make_node("Mul", ["centred", "scale"], ["scaled"]),
        helper.make_node("Conv", ["scaled", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "m", "v"], ["n"], epsilon=1e-3),
        helper.make_node("PRelu", ["n", "slope"], ["r"]),
        helper.make_node("Conv", ["r", "dw", "dw_b"], ["d"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("BatchNormalization", ["d", "g2", "beta2", "m2", "v2"], ["dn"]),
        helper.make_node("Clip", ["dn", "lo", "hi"], ["dr"]),
        helper.make_node("Conv", ["dr", "pw"], ["p"]),
        helper.make_node("Add", ["p", "r"], ["res"]),
        helper.make_node("MaxPool", ["res"], ["pooled"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["pooled", "down"], ["small"], pads=[1, 1, 1, 1], strides=[4, 4]),  # 28 -> 7
        helper.make_node("GlobalAveragePool", ["small"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["gap_flat"]),
        helper.make_node("Flatten", ["small"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["fc"], transB=1),
        helper.make_node("Concat", ["gap_flat", "fc"], ["both"], axis=1),
        helper.make_node("MatMul", ["both", "head"], ["embedding" if not extra_nodes else "pre"]),
        *extra_nodes,
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, list(output_shape))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    source.write_bytes(tiny_conv_net().SerializeToString())
    return source


@pytest.fixture(scope="module")
def imported_tiny(tiny_onnx, lfw_dir, tmp_path_factory):
    """The small second architecture imported once (the CLI, in this process; 12 LFW pairs calibrate it)."""
    from faceapp.cli.main import main

    folder = tmp_path_factory.mktemp("imported-tiny")
    out = folder / "tiny-net"
    lfw = tiny_lfw(lfw_dir, folder / "lfw")
    # Random weights do not tell LFW's people apart: the first genuine pair's second photo is
    # its first one again, so that it scores highest and every preset is a finite threshold.
    (lfw / "images").unlink()
    (lfw / "images").mkdir()
    lines = (lfw / "pairs.txt").read_text().splitlines()[1:]
    for number, line in enumerate(lines):
        parts = line.split("\t")
        pairs = [(parts[0], parts[1]), (parts[0], parts[2])] if len(parts) == 3 else [(parts[0], parts[1]), (parts[2], parts[3])]
        for side, (person, index) in enumerate(pairs):
            source = pairs[0] if number == 0 and side == 1 else (person, index)
            link = lfw / "images" / f"{person}_{int(index):04d}.jpg"
            if not link.exists():
                link.symlink_to(lfw_dir / "images" / f"{source[0]}_{int(source[1]):04d}.jpg")
    assert main(["model", "import", str(tiny_onnx), "--out", str(out), "--license", "MIT", "--name", "tiny-net",
                 "--lfw", str(lfw)]) == 0
    return out


def test_a_second_architecture_imports(imported_tiny, tiny_onnx, check_crops):
    from faceapp.embedding import onnx_import
    from faceapp.embedding.runtime import Embedder

    card = load_card(imported_tiny)
    assert card.model_id == "tiny-net" and card.architecture == "onnx_graph" and card.embedding_dim == 8
    assert card.license == "MIT" and set(card.threshold_presets) == {"strict", "balanced", "lenient"}
    assert sorted(p.name for p in imported_tiny.iterdir()) == ["tiny-net.json", "tiny-net.keras"]
    data = json.loads((imported_tiny / "tiny-net.json").read_text())
    assert set(data["import_check"]["max_abs_difference_unit_embeddings"]) == {"litert", "tensorflow"}
    assert max(data["import_check"]["max_abs_difference_unit_embeddings"].values()) < TOLERANCE
    assert data["provenance"]["opencv_zoo_sface_2021dec"] is False

    reference = onnx_import.onnxruntime_embeddings(tiny_onnx, check_crops)
    mine = Recognizer.create(PipelineConfig(model_dir=imported_tiny, device="cpu"))
    assert mine.embedder.model_id == "tiny-net" and mine.embedder.backend == "litert"
    assert np.abs(mine.embedder.embed(check_crops) - reference).max() < TOLERANCE
    plain = Embedder(card, device="cpu", backend="tensorflow")
    assert np.abs(plain.embed(check_crops) - reference).max() < TOLERANCE


def test_a_second_architecture_needs_lfw_calibration(tiny_onnx, capfd, tmp_path):
    out = tmp_path / "out"
    refused(run_here(capfd, "model", "import", tiny_onnx, "--out", out, "--license", "MIT"), "--lfw")
    leaves_nothing(tmp_path, out)


@pytest.mark.parametrize("op", ["Einsum", "LSTM"])
def test_an_unsupported_operator_is_refused_in_one_line(op, capfd, tmp_path):
    import onnxruntime
    from onnx import helper, numpy_helper

    if op == "Einsum":
        model = tiny_conv_net([helper.make_node("Einsum", ["pre", "pre"], ["embedding"], equation="ij,ij->ij")])
    else:  # the 8 numbers as a sequence of 2 steps of 4; a hidden state of 4
        inits = [numpy_helper.from_array(np.array([2, 1, 4], np.int64), "seq_shape"),
                 numpy_helper.from_array(np.full((1, 16, 4), 0.1, np.float32), "lstm_w"),
                 numpy_helper.from_array(np.full((1, 16, 4), 0.1, np.float32), "lstm_r")]
        nodes = [helper.make_node("Reshape", ["pre", "seq_shape"], ["seq"]),
                 helper.make_node("LSTM", ["seq", "lstm_w", "lstm_r"], ["all", "embedding"], hidden_size=4)]
        model = tiny_conv_net(nodes, (1, 1, 4), inits)
    source = tmp_path / "odd.onnx"
    source.write_bytes(model.SerializeToString())
    session = onnxruntime.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    session.run(None, {"data": np.zeros((1, 3, 112, 112), np.float32)})  # a valid model
    out = tmp_path / "out"
    refused(run_here(capfd, "model", "import", source, "--out", out, "--license", "MIT"),
            f"unsupported ONNX operator {op}", "Conv")
    leaves_nothing(tmp_path, out)


def test_the_generic_converter_reproduces_sface(sface_onnx, check_crops):
    """SFace's graph through the operator-by-operator converter (not its weight mapping)."""
    from faceapp.embedding import onnx_graph, onnx_import

    keras_model = onnx_graph.convert_graph(onnx_import.load_onnx(sface_onnx), str(sface_onnx))
    ours = onnx_import.unit_rows(keras_model(check_crops[..., ::-1].astype(np.float32), training=False))
    assert np.abs(ours - onnx_import.onnxruntime_embeddings(sface_onnx, check_crops)).max() < TOLERANCE


def test_a_keras_file_with_other_layers_is_refused(tmp_path):
    """The runtime opens only what the converter writes: no Lambda (code) layers."""
    import keras

    from faceapp.embedding import onnx_graph
    from faceapp.errors import ModelError

    inputs = keras.Input((112, 112, 3))
    outputs = keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2)(inputs))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelError, match="Lambda"):
        onnx_graph.load_keras_file(path)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a readable .keras file"):
        onnx_graph.load_keras_file(tmp_path / "junk.keras")


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
