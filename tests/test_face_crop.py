"""The wide face crop the gallery stores (faceapp.vision.face_crop), moving galleries
between SFace and the fused default (gallery reembed), and a gallery made by SFace
keeping its model when none is chosen."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from faceapp.media.imageio import encode_jpeg, read_image
from faceapp.storage.records import NewTemplate
from faceapp.vision.alignment import align_face
from faceapp.vision.dlib_align import dlib_chip
from faceapp.vision.face_crop import WIDE_SIZE, chip_from_wide, is_wide, tight_from_wide, wide_crop


@pytest.fixture(scope="module")
def sface():
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer

    return Recognizer.create(PipelineConfig(model_dir="sface", device="cpu"))


def _faces(recognizer, fixtures_dir):
    for path in sorted(fixtures_dir.glob("*/*.jpg")):
        image = read_image(path)
        for detection in recognizer.detect(image):
            yield image, detection


def test_both_inputs_are_cut_again_from_the_wide_crop(recognizer, fixtures_dir):
    tight_cosines, cosines = [], []
    sface, dlib = recognizer.embedder.members
    for image, detection in _faces(recognizer, fixtures_dir):
        wide = wide_crop(image, detection.landmarks)
        assert wide.shape == (WIDE_SIZE, WIDE_SIZE, 3) and is_wide(wide)
        tight = tight_from_wide(wide)
        assert tight.shape == (112, 112, 3) and not is_wide(tight)
        live, again = sface.embed(np.stack([align_face(image, detection.landmarks), tight]))
        tight_cosines.append(float(live @ again))
        live, again = dlib.embed(np.stack([dlib_chip(image, detection.landmarks), chip_from_wide(wide)]))
        cosines.append(float(live @ again))
    assert len(cosines) >= 10
    assert min(tight_cosines) > 0.97  # SFace: the same face resampled through the wide crop (the old JPEG thumbnail: 0.968)
    assert min(cosines) > 0.995  # measured 0.9983 at worst over 309 faces (see face_crop's docstring)


def test_stored_faces_are_wide_and_move_both_ways(recognizer, sface, fixtures_dir, tmp_path):
    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.reembed import decode_face, reembed_gallery

    photos = [fixtures_dir / "obama" / "obama_1.jpg", fixtures_dir / "biden" / "biden_1.jpg"]
    fused_samples = samples_from_files(recognizer, photos)
    with Gallery(tmp_path / "g.sqlite3") as gallery:
        for name, sample in zip(("obama", "biden"), samples_from_files(sface, photos)):
            gallery.add_person(name, [sample.template(sface.embedder.model_id)])
        _, templates = gallery.snapshot()
        assert all(decode_face(t.thumbnail).chip is not None for t in templates)  # stored wide
        report = reembed_gallery(gallery, recognizer.embedder)
        assert (report.reembedded, report.removed, report.must_reenroll) == (2, 0, ())
        assert gallery.model_id() == recognizer.embedder.model_id
        moved = gallery.matrix(recognizer.embedder.model_id)
        for name, sample in zip(("obama", "biden"), fused_samples):
            row = moved.embeddings[list(moved.names).index(name)]
            assert float(row @ sample.embedding) > 0.98  # as if enrolled with the fused model (JPEG aside)
        back = reembed_gallery(gallery, sface.embedder)
        assert back.reembedded == 2 and gallery.model_id() == sface.embedder.model_id


def test_older_tight_thumbnails_name_who_must_be_enrolled_again(recognizer, sface, fixtures_dir, tmp_path):
    from faceapp.errors import GalleryError
    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.records import NewTemplate
    from faceapp.storage.reembed import reembed_gallery

    with Gallery(tmp_path / "g.sqlite3") as gallery:
        for name in ("obama", "biden"):
            sample = samples_from_files(sface, [fixtures_dir / name / f"{name}_1.jpg"])[0]
            template = sample.template(sface.embedder.model_id)
            if name == "obama":  # as galleries stored before the wide crop: the 112x112 ArcFace crop
                template = NewTemplate(template.embedding, template.model_id, template.quality, encode_jpeg(sample.face.image))
            gallery.add_person(name, [template])
        before = gallery.matrix(sface.embedder.model_id).embeddings.copy()
        with pytest.raises(GalleryError, match=r"1 template\(s\) have no stored face wide enough .*\(obama\).*nothing was changed"):
            reembed_gallery(gallery, recognizer.embedder)
        assert gallery.model_id() == sface.embedder.model_id
        assert np.array_equal(gallery.matrix(sface.embedder.model_id).embeddings, before)
        dry = reembed_gallery(gallery, recognizer.embedder, dry_run=True)
        assert (dry.reembedded, dry.removed, dry.too_tight, dry.must_reenroll) == (1, 1, 1, ("obama",))
        assert reembed_gallery(gallery, sface.embedder, force=True).reembedded == 2  # SFace can use both
        done = reembed_gallery(gallery, recognizer.embedder, force=True)
        assert done.must_reenroll == ("obama",) and gallery.model_id() == recognizer.embedder.model_id


def test_a_gallery_made_by_sface_keeps_its_model_unless_one_is_chosen(sface, fixtures_dir, tmp_path, caplog, monkeypatch):
    from faceapp.errors import ModelMismatchError
    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer
    from faceapp.storage.gallery import Gallery

    monkeypatch.delenv("FACEAPP_MODELS", raising=False)
    with Gallery(tmp_path / "g.sqlite3") as gallery:
        sample = samples_from_files(sface, [fixtures_dir / "obama" / "obama_1.jpg"])[0]
        gallery.add_person("obama", [sample.template(sface.embedder.model_id)])
        with caplog.at_level(logging.WARNING):
            followed = Recognizer.create(PipelineConfig(device="cpu"), gallery)
        assert followed.card.model_id == sface.card.model_id
        assert "gallery reembed" in caplog.text
        probe = followed.process(read_image(fixtures_dir / "obama" / "obama_3.jpg"))
        assert [f.match.name for f in probe.faces] == ["obama"]
        chosen = Recognizer.create(PipelineConfig(model_dir="accurate", device="cpu"), gallery)
        with pytest.raises(ModelMismatchError, match="sface"):
            chosen.matcher()
    assert Recognizer.create(PipelineConfig(device="cpu")).card.is_ensemble  # the default, without a gallery


def test_force_keeps_templates_already_of_the_model_that_cannot_be_recomputed(recognizer, fixtures_dir, tmp_path):
    """A fused gallery whose thumbnails are the old 112x112 crops (made with --model accurate
    before the wide crop): ``reembed --force`` must not delete its valid templates."""
    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.records import NewTemplate
    from faceapp.storage.reembed import format_report, reembed_gallery

    with Gallery(tmp_path / "g.sqlite3") as gallery:
        sample = samples_from_files(recognizer, [fixtures_dir / "obama" / "obama_1.jpg"])[0]
        template = sample.template(recognizer.embedder.model_id)
        gallery.add_person("obama", [NewTemplate(template.embedding, template.model_id, template.quality,
                                                 encode_jpeg(sample.face.image))])
        before = gallery.matrix(recognizer.embedder.model_id).embeddings.copy()
        report = reembed_gallery(gallery, recognizer.embedder, force=True)
        assert (report.reembedded, report.kept, report.removed, report.must_reenroll) == (0, 1, 0, ())
        assert "kept 1 template(s)" in format_report(report)
        assert np.array_equal(gallery.matrix(recognizer.embedder.model_id).embeddings, before)


def test_corrections_of_sightings_of_another_model_store_no_wrong_template(recognizer, sface, fixtures_dir, tmp_path):
    """A sighting left on SFace after ``gallery reembed`` (its crop too tight): "Not NAME" makes
    it an unknown without a "not them" template that would not compare; "This is OTHER"
    embeds its crop again when it can."""
    import time

    from faceapp.recognition.corrections import give_sightings
    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.memory import NewSighting

    def sighting(person, crop):
        embedding = sface.embed([sface.align(image, sface.detect(image))[0]])
        now = time.time()
        return NewSighting(person, None, "cam", now, now + 1, 5, 0.8, 0.9, embedding, sface.embedder.model_id, thumbnail=crop)

    image = read_image(fixtures_dir / "obama" / "obama_2.jpg")
    (face,) = recognizer.align(image, recognizer.detect(image))
    with Gallery(tmp_path / "g.sqlite3") as gallery:
        for name in ("obama", "biden"):
            samples = samples_from_files(recognizer, [fixtures_dir / name / f"{name}_1.jpg"])
            gallery.add_person(name, [s.template(recognizer.embedder.model_id) for s in samples])
        gallery.record([sighting("obama", encode_jpeg(face.image)), sighting("biden", encode_jpeg(face.wide))])
        tight, wide = sorted(gallery.sightings(), key=lambda s: s.id)
        assert gallery.unassign(tight.id) == "obama"
        assert gallery.sighting(tight.id).person is None
        assert all(p.negative_count == 0 for p in gallery.people())  # nothing that would not compare
        give_sightings(gallery, recognizer, [gallery.sighting(wide.id)], "obama", wrong="biden")
        biden = next(p for p in gallery.people() if p.name == "biden")
        assert biden.negative_count == 1  # its wide crop, embedded again with the fused model
        gallery.matrix(recognizer.embedder.model_id)  # every template is the fused model's


def test_an_sface_archive_imports_into_a_new_gallery_and_keeps_its_model(sface, fixtures_dir, tmp_path, capfd, monkeypatch):
    from cli_helpers import ok, run_here

    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.storage.gallery import Gallery

    monkeypatch.delenv("FACEAPP_MODELS", raising=False)
    with Gallery(tmp_path / "old.sqlite3") as gallery:
        samples = samples_from_files(sface, [fixtures_dir / "obama" / "obama_1.jpg"])
        gallery.add_person("obama", [s.template(sface.embedder.model_id) for s in samples])
    ok(run_here(capfd, "--gallery", tmp_path / "old.sqlite3", "gallery", "export", tmp_path / "old.zip"))
    ok(run_here(capfd, "--gallery", tmp_path / "new.sqlite3", "gallery", "import", tmp_path / "old.zip"))  # no --model
    with Gallery(tmp_path / "new.sqlite3") as gallery:
        assert gallery.model_id() == sface.embedder.model_id
    # Into a gallery of the other model: one line saying how to go on.
    with Gallery(tmp_path / "fused.sqlite3") as gallery:
        gallery.add_person("biden", [NewTemplate(np.eye(1, 256, dtype=np.float32)[0], "sface-dlib-fused-v1")])
    failed = run_here(capfd, "--gallery", tmp_path / "fused.sqlite3", "gallery", "import", tmp_path / "old.zip")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "gallery reembed --model sface" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
