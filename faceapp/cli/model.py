"""The ``faceapp model`` commands: ``model import`` (bring your own embedding model) and
``model calibrate`` (fit a model's open-set decision).

``faceapp model import FILE.onnx --out DIR --license TEXT`` converts an ArcFace-style
ONNX embedding model (112 x 112 aligned RGB faces in) to our TensorFlow/LiteRT runtime
(:mod:`faceapp.embedding.onnx_import`), checks it against onnxruntime on aligned faces,
and writes a model directory (weights + card) that every command accepts with ``--model DIR``.
``faceapp model calibrate --model DIR --lfw DATA_DIR`` fits the gallery-size open-set
decision of an imported or trained model (:mod:`faceapp.evaluation.open_set_fit`).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from faceapp.errors import FaceAppError, ModelError

logger = logging.getLogger(__name__)

#: The issue's bound on |ours - onnxruntime| for unit embeddings.
TOLERANCE = 1e-4
MAX_CHECK_FACES = 32
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_MODEL_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

IMPORT_DESCRIPTION = """\
Convert an ArcFace-style ONNX embedding model (112x112 faces aligned to the ArcFace
5-point template, RGB in) to FaceApp's runtime and write a model directory: the Keras
weights and a model card (DIR/ID.json) that every command accepts with --model DIR.
SFace graphs (OpenCV Zoo's face_recognition_sface and models of the same layers, e.g.
fine-tuned) are mapped onto our SFace network; other graphs are converted operator by
operator (Conv incl. grouped/depthwise, BatchNormalization, Relu, PRelu, LeakyRelu,
Sigmoid, Clip, Add, Sub, Mul, Div, MaxPool, AveragePool, GlobalAveragePool, ReduceMean,
Flatten, Reshape, Gemm, MatMul, Transpose, Identity, Dropout, Concat, Constant) into a
.keras model; a graph with another operator is refused, naming it.
The result is checked against onnxruntime on the aligned faces of --check-images (both
our LiteRT and TensorFlow paths, unit embeddings within 1e-4); a failed check writes
nothing. Threshold presets: a model whose embeddings equal the shipped SFace's keeps its
calibrated presets and open-set decision; any other needs --lfw DATA_DIR: the presets of
`faceapp eval lfw`, and, when the set is large enough (1,000,000 impostor pairs, 30
people with 5+ faces and 20 held-out people with 3+; the shared LFW set, the 7,701
images of pairs.txt, has 29.6 million, 260 and about 400), the open-set decision
fitted on its faces, so that the presets are false-alarm targets whatever the gallery's
size (with a smaller set they act as fixed thresholds until `faceapp model calibrate`).
--license is required: state the licence the model's authors give (it is copied into
the card as written). Needs the onnx and onnxruntime packages."""

CALIBRATE_DESCRIPTION = """\
Fit the open-set decision of the model chosen by --model DIR (one made by `faceapp model
import` or `faceapp train`) on labelled faces, and write it into the model's card: the
presets become false-alarm targets (strict 0.1%, balanced 1%, lenient 5% of strangers'
faces named) whose thresholds follow the gallery's size, instead of fixed similarities.
Every image's face is embedded with the model; every pair of two people's faces is an
impostor pair; their score distribution (a generalized Pareto tail above its 99.9th
percentile) and how templates of one person add up make the model. The track's
same-face and the visitors' join similarities are moved onto the model's scale too, and
a held-out check (fitted on half of the people, measured on the other half) is printed
and kept in the card. Needs 1,000,000 impostor pairs, 30 people with 5+ faces and 20
held-out people with 3+ (the shared LFW set, the 7,701 images of pairs.txt: 29.6 million,
260, about 400); on 2 CPU cores that set takes about 4 minutes. Plain embeddings (what
galleries store): --flip-fusion is refused. A read-only card is refused before any work.
The shipped models come calibrated and are not changed."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``model import`` to the CLI's subparsers."""
    model = commands.add_parser("model", help="embedding models: import your own (ONNX), fit its open-set decision")
    actions = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    imp = actions.add_parser("import", parents=[common], help="convert an ONNX embedding model into a model directory",
                             description=IMPORT_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("onnx", metavar="FILE.onnx", type=Path, help="the ONNX embedding model")
    imp.add_argument("--out", required=True, type=Path, metavar="DIR", help="the model directory to write (new or empty)")
    imp.add_argument("--license", required=True, metavar="TEXT",
                     help="the model's licence as its authors state it, e.g. Apache-2.0 (required; copied into the card)")
    imp.add_argument("--name", metavar="ID", help="the model_id (default: from the file name); lower-case letters, digits, . _ -")
    imp.add_argument("--lfw", metavar="DATA_DIR", type=Path,
                     help="calibrate the threshold presets on this LFW folder (pairs.txt, images/); "
                          "required unless the model is equivalent to the shipped SFace")
    imp.add_argument("--check-images", metavar="DIR", type=Path,
                     help="photos whose faces check the conversion (default: the shared fixture faces, $FACEAPP_FIXTURES)")
    imp.set_defaults(func=cmd_import)
    cal = actions.add_parser("calibrate", parents=[common], help="fit a model's open-set decision on labelled faces (LFW)",
                             description=CALIBRATE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    cal.add_argument("--lfw", metavar="DATA_DIR", type=Path, required=True,
                     help="labelled faces: an LFW folder (images/NAME_NNNN.jpg) or one folder of photos per person")
    cal.set_defaults(func=cmd_calibrate)


def default_model_id(path: Path) -> str:
    text = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-._")
    return text[:64] or "imported"


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FaceAppError(f"{out}: exists and is not an empty folder; the model directory must be new")


def check_crops(folder: Path) -> Any:
    """Aligned BGR crops ``(N, 112, 112, 3)`` of the faces in ``folder``'s photos, aligned
    by the app's own pipeline (the shipped detector and SFace alignment)."""
    import numpy as np

    from faceapp.media.imageio import read_image
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer

    if not folder.is_dir():
        raise FaceAppError(f"check images not found: {folder} (give --check-images DIR: photos with faces)")
    recognizer = Recognizer.create(PipelineConfig(model_dir="sface", device="cpu"))
    crops = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        image = read_image(path)
        crops += [face.image for face in recognizer.align(image, recognizer.detect(image))]
        if len(crops) >= MAX_CHECK_FACES:
            break
    if not crops:
        raise FaceAppError(f"no face found in the photos of {folder}: the conversion cannot be checked")
    return np.stack(crops[:MAX_CHECK_FACES]), recognizer


def _card(model_id: str, architecture: str, license_text: str, weights: Path, dim: int, shipped: Any) -> dict:
    from faceapp.checksums import sha256_of

    shipped_data = json.loads(shipped.card_file.read_text(encoding="utf-8"))
    return {
        "model_id": model_id,
        "architecture": architecture,
        "license": license_text,
        "weights": weights.name,
        "weights_sha256": sha256_of(weights),
        "embedding_dim": dim,
        "input": shipped_data["input"] if architecture == "sface" else
        dict(shipped_data["input"], range="0..255, the ONNX graph's own scaling converted with it"),
        # Provisional (replaced before the card is final): the runtime needs presets to load.
        "thresholds": {"default": shipped.default_preset, "presets": dict(shipped.threshold_presets)},
    }


def cmd_import(args: argparse.Namespace) -> int:
    import numpy as np

    from faceapp.accel.device import import_tensorflow

    import_tensorflow()  # first, before onnx or Keras import it: its start-up noise on stderr stays hidden
    from faceapp.embedding import onnx_import
    from faceapp.embedding.modelcard import load_card
    from faceapp.embedding.runtime import Embedder
    from faceapp.paths import fixtures_dir

    source, out = args.onnx, args.out
    license_text = " ".join(str(args.license).split())
    if not license_text or license_text.lower() in {"not stated", "unknown", "none", "n/a"}:
        raise FaceAppError("--license: state the model's licence as its authors give it (e.g. Apache-2.0, MIT, "
                           "'research only'); an unknown licence is refused")
    model_id = args.name if args.name is not None else default_model_id(source)
    if not _MODEL_ID.fullmatch(model_id):
        raise FaceAppError(f"--name {model_id!r}: use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
    _check_out(out)
    dataset = None
    if args.lfw is not None:
        from faceapp.evaluation.lfw import load_lfw

        dataset = load_lfw(args.lfw)  # check the data before the slow part
    architecture, keras_model = onnx_import.convert(source)
    dim = int(keras_model.output_shape[-1])
    crops, aligner = check_crops(args.check_images or fixtures_dir())
    reference = onnx_import.onnxruntime_embeddings(source, crops)
    if reference.shape[1] != dim:
        raise ModelError(f"{source}: onnxruntime gives {reference.shape[1]} numbers a face, our conversion {dim}")

    shipped = load_card("sface")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        weights = staging / onnx_import.weights_file_name(architecture, model_id)
        onnx_import.save_converted(architecture, keras_model, weights)
        card = _card(model_id, architecture, license_text, weights, dim, shipped)
        card_path = staging / f"{model_id}.json"
        card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        differences = {}
        for backend in ("litert", "tensorflow"):
            embedder = Embedder(load_card(staging), device="cpu", backend=backend)
            differences[embedder.backend] = float(np.abs(onnx_import.unit_rows(embedder.embed(crops)) - reference).max())
        worst = max(differences.values())
        figures = ", ".join(f"{name} {value:.1e}" for name, value in differences.items())
        print(f"check: max |ours - onnxruntime| of unit embeddings on {len(crops)} aligned faces: {figures} (bound {TOLERANCE:g})")
        if not worst <= TOLERANCE:
            raise ModelError(f"{source}: the converted model differs from onnxruntime by {worst:.1e} (> {TOLERANCE:g}); nothing written")
        vs_shipped = float(np.abs(aligner.embedder.embed(crops).astype(np.float64) - reference).max()) if dim == shipped.embedding_dim else float("inf")
        card["thresholds"] = _thresholds(args, dataset, staging, shipped, vs_shipped, card)
        from faceapp.checksums import sha256_of

        source_sha256 = sha256_of(source)
        card["provenance"] = {
            "source_file": source.name,
            "source_sha256": source_sha256,
            "opencv_zoo_sface_2021dec": source_sha256 == onnx_import.SFACE_2021DEC_SHA256,
            "converted_by": "faceapp model import",
        }
        card["import_check"] = {
            "reference": "onnxruntime (CPU), RGB 0..255 NCHW",
            "faces": len(crops),
            "max_abs_difference_unit_embeddings": differences,
            "tolerance": TOLERANCE,
            "max_abs_difference_to_shipped_sface": vs_shipped if np.isfinite(vs_shipped) else None,
        }
        card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        load_card(staging)  # the final card loads
        if out.exists():
            out.rmdir()  # empty (checked above)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"wrote {out}: model {model_id!r} ({architecture}, {dim}-d), presets "
          + ", ".join(f"{k} {v:g}" for k, v in card["thresholds"]["presets"].items())
          + f"; use it with --model {out}")
    return 0


def _lfw_open_set(embeddings: Any, dataset: Any, card: dict, out: Path) -> dict:
    """The open-set sections fitted on the LFW faces the import embedded (only the
    detected ones, plain embeddings: what the app matches), or none when they are too few."""
    from faceapp.evaluation.ident import person_of
    from faceapp.evaluation.open_set_fit import TooFewFaces, fit_open_set

    keep = embeddings.detected & embeddings.usable
    names = [person_of(Path(name)) for name, kept in zip(dataset.names, keep) if kept]
    try:
        fit = fit_open_set(embeddings.plain[keep], names, source=f"faceapp model import --lfw {dataset.directory}")
    except TooFewFaces as reason:
        print(f"the presets act as fixed thresholds in a gallery: {reason}; `faceapp model calibrate --model {out} "
              "--lfw DATA_DIR` fits the open-set decision later")
        return {}
    print(fit.summary())
    return {k: v for k, v in fit.apply(card).items() if k in ("open_set", "tracking", "visitors")}


def _check_writable(card_file: Path) -> None:
    """A one-line error unless the card can be replaced: a read-only card (no write
    permission: the user meant it to stay), a read-only file system or folder."""
    import os
    import stat

    from faceapp.files import on_read_only_filesystem

    target = card_file.resolve()
    if not stat.S_IMODE(target.stat().st_mode) & 0o222 or not os.access(target, os.W_OK):
        raise FaceAppError(f"{target}: the model card is read-only; make it writable (chmod u+w) to calibrate the model")
    if on_read_only_filesystem(target) or not os.access(target.parent, os.W_OK):
        raise FaceAppError(f"{target.parent}: cannot write there (read-only); copy the model directory somewhere writable")


def cmd_calibrate(args: argparse.Namespace) -> int:
    import numpy as np

    from faceapp.accel.device import import_tensorflow

    import_tensorflow()
    from faceapp.cli.common import build_recognizer, show_progress
    from faceapp.embedding.modelcard import load_card
    from faceapp.evaluation.open_set_fit import embed_people, fit_open_set, shortfall
    from faceapp.files import write_json
    from faceapp.paths import DEFAULT_MODEL_DIR
    from faceapp.vision.faces import FacePolicy

    if args.flip_fusion:
        raise FaceAppError("--flip-fusion: the open-set decision is fitted on plain embeddings (what galleries store); "
                           "leave it out")
    card = load_card(args.model)
    path = card.card_file
    if path is None or path.resolve().is_relative_to(DEFAULT_MODEL_DIR.resolve()):
        raise FaceAppError(f"model {card.model_id} is a shipped model: it comes calibrated; give --model DIR of a model "
                           "made by `faceapp model import` or `faceapp train`")
    _check_writable(path)  # before minutes of embedding
    recognizer = build_recognizer(args)
    # The faces model import --lfw finds (a second, upscaled try; the one nearest the centre).
    policy = FacePolicy(scales=(1.0, 2.0), pick="centre", no_face="skip")
    emb, names = embed_people(recognizer, args.lfw, policy=policy, progress=show_progress(args))
    reason = shortfall(np.asarray(names))
    if reason is not None:
        raise FaceAppError(f"{args.lfw}: too few faces to fit the open-set decision: {reason}")
    fit = fit_open_set(emb, names, source=f"faceapp model calibrate --lfw {args.lfw}")
    data = json.loads(path.read_text(encoding="utf-8"))
    write_json(path, fit.apply(data), what="model card")
    load_card(path)  # the card still loads
    print(fit.summary())
    print(f"wrote the open-set decision into {path} (model {card.model_id}); the presets are now false-alarm targets")
    return 0


def _thresholds(args: argparse.Namespace, dataset: Any, staging: Path, shipped: Any, vs_shipped: float, card: dict) -> dict:
    """The card's threshold presets: LFW's when --lfw is given; else the shipped SFace's,
    but only for a model whose embeddings equal the shipped model's."""
    if dataset is not None:
        from faceapp.cli.common import show_progress
        from faceapp.evaluation.lfw import lfw_embeddings, run_lfw
        from faceapp.recognition.pipeline import PipelineConfig, Recognizer
        from faceapp.vision.faces import FacePolicy

        recognizer = Recognizer.create(PipelineConfig(model_dir=staging, device="cpu"))
        policy = FacePolicy(scales=(1.0, 2.0), pick="centre")
        embeddings = lfw_embeddings(recognizer, dataset, policy, progress=show_progress(args))
        report = run_lfw(recognizer, dataset, out_dir=None, policy=policy, embeddings=embeddings)
        best = report["results"][report["best_mode"]]
        unset = sorted(name for name, value in best["presets"].items() if value is None)  # not finite
        if unset:
            raise FaceAppError(f"{args.onnx}: LFW ({len(dataset.pairs)} pairs) gives no {', '.join(unset)} threshold (an impostor "
                               "pair scores highest): the model does not tell these people apart, or the pairs are too few")
        presets = {name: round(float(value), 4) for name, value in best["presets"].items()}
        print(f"LFW ({len(dataset.pairs)} pairs): {report['best_mode']} k-fold accuracy {best['accuracy_mean']:.4f}")
        card["evaluation"] = {"lfw": {"pairs": len(dataset.pairs), "best_mode": report["best_mode"], "results": report["results"]}}
        card.update(_lfw_open_set(embeddings, dataset, card, args.out))
        return {"default": "balanced", "presets": presets, "source": f"faceapp model import --lfw ({len(dataset.pairs)} pairs)"}
    if vs_shipped <= TOLERANCE:
        print(f"the model equals the shipped SFace ({shipped.model_id}, max difference {vs_shipped:.1e}): its calibrated presets are kept")
        data = json.loads(shipped.card_file.read_text(encoding="utf-8"))
        for key in ("open_set", "visitors"):
            if key in data:
                card[key] = data[key]
        return dict(data["thresholds"], source=f"copied from {shipped.model_id}: the same embeddings (max difference {vs_shipped:.1e})")
    raise FaceAppError(f"{args.onnx}: its embeddings differ from the shipped SFace's (by {vs_shipped:.2g}), so its thresholds "
                       "must be calibrated: give --lfw DATA_DIR")
