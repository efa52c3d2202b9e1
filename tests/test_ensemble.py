"""The fused SFace + dlib ResNet model: its card, its embedder (the members' unit
embeddings, scaled by the square roots of their fusion weights, concatenated: one unit
vector), and the pipeline feeding it dlib's chips (recognise, evaluate, enroll)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from faceapp.embedding.modelcard import load_card
from faceapp.errors import ModelError
from faceapp.paths import DEFAULT_MODEL_DIR


def _card(folder: Path, weights=(0.4, 0.6), **changes) -> Path:
    sface = json.loads((DEFAULT_MODEL_DIR / "sface_2021dec.json").read_text())
    fused = json.loads((DEFAULT_MODEL_DIR / "sface_dlib_fused.json").read_text())
    from faceapp.embedding.dlib_resnet import WEIGHTS_FILE, WEIGHTS_SHA256

    data = {
        "model_id": "test-fused", "architecture": "ensemble", "license": "Apache-2.0 and public domain",
        "embedding_dim": 256, "thresholds": fused["thresholds"], "open_set": fused["open_set"],
        "tracking": fused["tracking"], "visitors": fused["visitors"],
        "members": [
            {"architecture": "sface", "weights": str(DEFAULT_MODEL_DIR / sface["weights"]),
             "weights_sha256": sface["weights_sha256"], "embedding_dim": 128, "fusion_weight": weights[0]},
            {"architecture": "dlib_resnet", "weights": str(DEFAULT_MODEL_DIR / WEIGHTS_FILE),
             "weights_sha256": WEIGHTS_SHA256, "embedding_dim": 128, "fusion_weight": weights[1]},
        ],
    }
    data.update(changes)
    path = folder / "fused.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer

    path = _card(tmp_path_factory.mktemp("fused"))
    return Recognizer.create(PipelineConfig(model_dir=path, device="cpu"))


def test_the_card_names_its_members(tmp_path):
    card = load_card(_card(tmp_path))
    assert card.is_ensemble and card.architecture == "ensemble" and card.embedding_dim == 256
    assert [m.architecture for m in card.members] == ["sface", "dlib_resnet"] and card.fusion_weights == (0.4, 0.6)
    assert card.weights == card.members[0].weights
    with pytest.raises(ModelError, match="lists its members"):
        load_card(_card(tmp_path, architecture="sface"))
    with pytest.raises(ModelError, match="malformed"):
        load_card(_card(tmp_path, members=[{"architecture": "sface"}]))
    with pytest.raises(ModelError, match="own scale"):  # SFace's constants would not fit its similarities
        load_card(_card(tmp_path, tracking=None))
    with pytest.raises(ModelError, match="nor a model card"):
        load_card(DEFAULT_MODEL_DIR / "README.md")


def test_the_shipped_fused_card_is_accurate_and_calibrated():
    card = load_card("accurate")
    assert card.model_id == "sface-dlib-fused-v1" and card.is_ensemble and sum(card.fusion_weights) == pytest.approx(1.0)
    assert card.same_face is not None and 0.5 < card.same_face < card.threshold_presets["lenient"]
    presets = card.threshold_presets
    assert presets["lenient"] < presets["balanced"] < presets["strict"] < card.open_set["ceiling"]
    assert card.open_set["floor"] < presets["strict"] and card.visitors["join"] > card.same_face


def test_bad_fusion_weights_are_refused(tmp_path):
    from faceapp.embedding.ensemble import EnsembleEmbedder

    with pytest.raises(ModelError, match="sum to 1"):
        EnsembleEmbedder(load_card(_card(tmp_path, weights=(0.5, 0.7))), device="cpu")


def test_fused_embeddings_are_the_scaled_members_and_unit_length(fused, sface_recognizer, fixtures_dir):
    recognizer = sface_recognizer
    from faceapp.media.imageio import read_image

    image = read_image(fixtures_dir / "obama" / "obama_1.jpg")
    faces = fused.align(image, fused.detect(image))
    assert faces and all(f.chip is not None and f.chip.shape == (150, 150, 3) and f.chip.dtype == np.uint8 for f in faces)
    embeddings = fused.embed(faces)
    assert embeddings.shape == (len(faces), 256)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    sface_part = recognizer.embed(recognizer.align(image, recognizer.detect(image)))
    assert np.allclose(embeddings[:, :128] / np.sqrt(0.4), sface_part, atol=1e-5)
    dlib_part = fused.embedder.members[1].embed(np.stack([f.chip for f in faces]))
    assert np.allclose(embeddings[:, 128:] / np.sqrt(0.6), dlib_part, atol=1e-5)
    # Its cosine is the weighted sum of the members' own cosines (each member run on its own).
    other = read_image(fixtures_dir / "obama" / "obama_2.jpg")
    other_faces = fused.align(other, fused.detect(other))
    second = fused.embed(other_faces)[0]
    sface_cosine = float(sface_part[0] @ recognizer.embed(recognizer.align(other, recognizer.detect(other)))[0])
    dlib_cosine = float(dlib_part[0] @ fused.embedder.members[1].embed(np.stack([other_faces[0].chip]))[0])
    assert float(embeddings[0] @ second) == pytest.approx(0.4 * sface_cosine + 0.6 * dlib_cosine, abs=1e-5)
    with pytest.raises(ValueError, match="chip"):
        fused.embed([type(f)(f.image, f.detection) for f in faces])
    with pytest.raises(ValueError, match="chips"):
        fused.embedder.embed(np.stack([f.image for f in faces]))


def test_the_fused_pipeline_names_the_same_person(fused, fixtures_dir):
    from faceapp.media.imageio import read_image
    from faceapp.recognition.enrollment import samples_from_files

    samples = samples_from_files(fused, [fixtures_dir / "obama" / "obama_1.jpg", fixtures_dir / "biden" / "biden_1.jpg"])
    obama, biden = (s.embedding for s in samples)
    probe = fused.process(read_image(fixtures_dir / "obama" / "obama_3.jpg"))
    (face,) = probe.faces
    assert float(face.embedding @ obama) > float(face.embedding @ biden) + 0.2


def test_sightings_named_under_the_fused_model_use_their_own_embeddings(fused):
    from types import SimpleNamespace

    from faceapp.media.imageio import encode_jpeg
    from faceapp.recognition.corrections import templates_from_sightings

    crop = np.full((112, 112, 3), 128, np.uint8)
    crop[30:90, 30:90] = 200  # sharp edges, well lit
    own = np.zeros((1, 256), np.float32)
    own[0, 0] = 1.0
    sightings = [SimpleNamespace(id=1, thumbnail=encode_jpeg(crop), quality=0.9, embeddings=own, model_id=fused.embedder.model_id),
                 SimpleNamespace(id=2, thumbnail=encode_jpeg(crop), quality=0.9, embeddings=own, model_id="sface-2021dec")]
    templates = templates_from_sightings(fused, sightings)
    assert [t.source for t in templates] == ["sighting 1"] and np.array_equal(templates[0].embedding, own[0])
