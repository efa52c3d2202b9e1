"""The ``faceapp`` command line, end to end.

One flow test walks through enroll -> identify -> verify -> recognize -> gallery
management -> export/import; one parametrised test covers every user error: exit status
1, exactly one line on stderr (``faceapp: error: ...``), no traceback, gallery untouched.
The steps that prove something about processes (the gallery outlives the process that
wrote it; nothing native leaks onto stderr) run ``python -m faceapp``; the rest call
``faceapp.cli.main.main`` in-process, which saves about a second each.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import file_digest, ok, run_cli, run_here
from conftest import GROUP_PHOTO_PEOPLE, copy_model_dir, fixture_photos, flip_byte

from faceapp.embedding.modelcard import DEFAULT_CARD, load_card
from faceapp.recognition.decision import OpenSetCalibration
from faceapp.storage.gallery import Gallery


def contains(box, point) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


@pytest.fixture(scope="module", autouse=True)
def converted_model(recognizer):
    """Load the models once in this process first, so that the LiteRT conversion (cached
    per user) is done before any command runs."""
    return recognizer


def gallery_contents(path: Path) -> list[tuple]:
    with Gallery(path) as gallery:
        people, templates = gallery.snapshot()
    names = {p.id: p.name for p in people}
    return sorted(
        (names[t.person_id], t.embedding.tobytes(), t.model_id, round(t.quality, 6), t.thumbnail, t.source, t.created_at)
        for t in templates
    ) + sorted((p.name, p.created_at) for p in people)


# --------------------------------------------------------------------------- the happy path
def test_help_and_version(capfd):
    assert ok(run_cli("--version")).stdout.startswith("faceapp ")
    with pytest.raises(SystemExit) as exit_info:
        run_here(capfd, "--help")
    assert exit_info.value.code == 0
    assert "enroll" in capfd.readouterr().out


def test_enroll_identify_verify_recognize_manage_export_import(tmp_path, fixtures_dir, fixture_video, capfd):
    """The commands that matter run as real processes; the quick gallery actions in-process."""
    gallery = tmp_path / "gallery.sqlite3"
    g = ("--gallery", gallery)
    obama, biden = fixture_photos(fixtures_dir, "obama"), fixture_photos(fixtures_dir, "biden")

    # Enroll, each person in their own process.
    assert "enrolled 'obama' with 4 template(s)" in ok(run_cli(*g, "enroll", "obama", *obama)).stdout
    assert "enrolled 'biden' with 2 template(s)" in ok(run_cli(*g, "enroll", "biden", *biden)).stdout

    # The gallery survives into a new process: both named, each in their place.
    photo = "groups/obama_and_biden_2.jpg"
    result = json.loads(ok(run_cli(*g, "identify", fixtures_dir / photo, "--json")).stdout)
    # The default preset, calibrated for a gallery of two people with 4 and 2 templates.
    calibration = OpenSetCalibration.from_card(load_card().open_set)
    assert result["decision"] == load_card().default_preset
    assert result["threshold"] == pytest.approx(calibration.gallery_threshold(np.array([4, 2]), 0.01), abs=1e-6)
    for name, point in GROUP_PHOTO_PEOPLE[photo]:
        (face,) = [f for f in result["faces"] if contains(f["box"], point)]
        assert face["name"] == name and face["best_name"] == name and face["similarity"] > 0.5
    text = ok(run_here(capfd, *g, "identify", fixtures_dir / "groups/obama_partial_face.jpg")).stdout
    assert text.startswith("face 1:") and "obama" in text

    # Verify needs no gallery.
    same = json.loads(ok(run_here(capfd, "verify", obama[0], obama[3], "--json")).stdout)
    other = json.loads(ok(run_here(capfd, "verify", "--json", obama[0], biden[0])).stdout)
    assert same["same_person"] is True and other["same_person"] is False
    assert same["similarity"] > same["threshold"] > other["similarity"]

    # Recognize a video (empty frames, Obama panning, Biden panning, empty frames),
    # with one JSON line per face per frame.
    events = tmp_path / "events.jsonl"
    frames = 24  # 4 empty, 16 of Obama panning, the first 4 of Biden
    summary = ok(run_cli(*g, "recognize", "--source", fixture_video.path, "--events", events, "-q",
                         "--max-frames", frames)).stdout
    assert summary.startswith(f"{frames} frame(s)")
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    for line in lines:
        assert {"frame", "time_s", "box", "name", "similarity"} <= set(line)
        assert len(line["box"]) == 4 and line["name"] in ("obama", "biden", None)
        assert -1.0 <= line["similarity"] <= 1.0
        assert line["time_s"] == pytest.approx(line["frame"] / fixture_video.fps, abs=1e-3)
        assert fixture_video.people_per_frame[line["frame"]], "a face reported on an empty frame"
    assert {line["frame"] for line in lines} <= set(range(frames))
    assert {line["name"] for line in lines} >= {"obama", "biden"}
    seen = sum(1 for i in range(frames) if fixture_video.people_per_frame[i])
    assert len({line["frame"] for line in lines}) >= seen - 2  # a face on (nearly) every such frame

    # List, export, import into a new gallery: the same gallery.
    listing = json.loads(ok(run_here(capfd, *g, "gallery", "list", "--json")).stdout)
    assert [(p["name"], p["templates"]) for p in listing] == [("biden", 2), ("obama", 4)]
    archive = tmp_path / "export.zip"
    ok(run_here(capfd, *g, "gallery", "export", archive))
    copy = tmp_path / "copy.sqlite3"
    assert "imported 2 new people" in ok(run_here(capfd, "gallery", "import", archive, "--gallery", copy)).stdout
    assert json.loads(ok(run_here(capfd, "--gallery", copy, "gallery", "list", "--json")).stdout) == listing
    original = gallery_contents(gallery)
    assert gallery_contents(copy) == original

    # Rename, merge, remove (on the copy).
    c = ("--gallery", copy)
    ok(run_here(capfd, *c, "gallery", "rename", "obama", "Barack Obama"))
    assert "(6 template(s))" in ok(run_here(capfd, *c, "gallery", "merge", "biden", "Barack Obama")).stdout
    with Gallery(copy) as merged:
        assert [(p.name, p.template_count) for p in merged.people()] == [("Barack Obama", 6)]
    ok(run_here(capfd, *c, "gallery", "remove", "Barack Obama"))
    assert "is empty" in ok(run_here(capfd, *c, "gallery", "list")).stdout
    # The original gallery was never touched by any of that.
    assert gallery_contents(gallery) == original


# --------------------------------------------------------------------------- user errors
@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, damaged_model_dir, enrolled_gallery_file):
    """Broken inputs shared by the error cases."""
    import cv2

    root = tmp_path_factory.mktemp("bad")
    (root / "notes.jpg").write_text("this is text, not a photo")
    cv2.imwrite(str(root / "blank.png"), np.full((240, 320, 3), 128, np.uint8))
    (root / "corrupt.sqlite3").write_bytes(b"this is not a database" * 100)
    (root / "truncated.sqlite3").write_bytes(enrolled_gallery_file.read_bytes()[:3000])
    card_dir = copy_model_dir(root / "malformed-card")
    card = json.loads((card_dir / DEFAULT_CARD).read_text())
    card["thresholds"] = {"default": "balanced", "presets": ["strict", "lenient"]}
    (card_dir / DEFAULT_CARD).write_text(json.dumps(card))
    detector_dir = copy_model_dir(root / "damaged-detector")
    flip_byte(detector_dir / "face_detection_yunet_2023mar.onnx", 5000)
    flip_byte(detector_dir / "yunet_2023mar.weights.h5", 5000)
    return {
        "root": root,
        "notes": root / "notes.jpg",
        "blank": root / "blank.png",
        "corrupt": root / "corrupt.sqlite3",
        "truncated": root / "truncated.sqlite3",
        "damaged_weights": damaged_model_dir,
        "malformed_card": card_dir,
        "damaged_detector": detector_dir,
    }


# Each case: (id, argument builder, what the message must say). ``f`` holds bad_files plus
# "gallery" (a private copy of the enrolled gallery) and "photos" (the fixtures folder).
ERROR_CASES = [
    ("non-image", lambda f: ["identify", f["notes"]], "not an image"),
    ("missing-file", lambda f: ["identify", f["root"] / "missing.jpg"], "no such file"),
    ("folder-as-image", lambda f: ["identify", f["root"]], "is a folder"),
    ("enroll-no-face", lambda f: ["enroll", "newbie", f["blank"]], "no face found"),
    ("enroll-several-faces", lambda f: ["enroll", "newbie", f["photos"] / "groups/obama_and_biden_2.jpg"], "2 faces found"),
    ("enroll-takes-none", lambda f: ["enroll", "newbie", f["photos"] / "obama/obama_1.jpg", f["blank"]], "blank.png: no face found"),
    ("enroll-existing-name", lambda f: ["enroll", "obama", f["photos"] / "obama/obama_1.jpg"], "--add"),
    ("enroll-empty-name", lambda f: ["enroll", " ", f["photos"] / "obama/obama_1.jpg"], "name cannot be empty"),
    ("verify-no-face", lambda f: ["verify", f["blank"], f["photos"] / "obama/obama_1.jpg"], "no face found"),
    ("unknown-name-remove", lambda f: ["gallery", "remove", "nobody"], "'nobody'"),
    ("unknown-name-rename", lambda f: ["gallery", "rename", "nobody", "somebody"], "'nobody'"),
    ("unknown-name-merge", lambda f: ["gallery", "merge", "nobody", "obama"], "'nobody'"),
    ("rename-to-taken-name", lambda f: ["gallery", "rename", "obama", "biden"], "already"),
    ("not-unknown-name", lambda f: ["gallery", "not", "nobody", f["photos"] / "biden/biden_1.jpg"], "'nobody'"),
    ("not-no-face", lambda f: ["gallery", "not", "obama", f["blank"]], "no face found"),
    ("not-several-faces", lambda f: ["gallery", "not", "obama", f["photos"] / "groups/obama_and_biden_2.jpg"], "2 faces found"),
    ("not-themselves", lambda f: ["gallery", "not", "obama", f["photos"] / "obama/obama_1.jpg"], "obama_1.jpg: this face looks like 'obama' themselves"),
    ("not-a-photo", lambda f: ["gallery", "not", "obama", f["notes"]], "not an image"),
    ("threshold-out-of-range", lambda f: ["gallery", "threshold", "obama", "2"], "between -1 and 1"),
    ("threshold-unknown-name", lambda f: ["gallery", "threshold", "nobody", "auto"], "'nobody'"),
    ("calibrate-bad-rule", lambda f: ["--threshold", "tight", "gallery", "calibrate"], "threshold"),
    ("sightings-unknown-person", lambda f: ["sightings", "--person", "nobody"], "'nobody'"),
    ("sightings-person-and-unknown", lambda f: ["sightings", "--person", "obama", "--unknown"], "exclude each other"),
    ("sighting-missing", lambda f: ["sightings", "not", "12345"], "no sighting 12345"),
    ("sighting-name-missing", lambda f: ["sightings", "name", "12345", "obama"], "no sighting 12345"),
    ("unknown-missing", lambda f: ["unknowns", "name", "7", "obama"], "no unknown visitor #7"),
    ("unknowns-merge-missing", lambda f: ["unknowns", "merge", "7", "8"], "no unknown visitor #7"),
    ("unknowns-dismiss-missing", lambda f: ["unknowns", "dismiss", "7"], "no unknown visitor #7"),
    ("alert-without-command", lambda f: ["recognize", "--source", f["photos"] / "obama", "--alert", "obama"], "--on-event"),
    ("alert-bad-command", lambda f: ["recognize", "--source", f["photos"] / "obama", "--on-event", "'unclosed"], "cannot read the command"),
    ("corrupt-gallery", lambda f: ["--gallery", f["corrupt"], "gallery", "list"], "not a valid FaceApp gallery"),
    ("truncated-gallery", lambda f: ["--gallery", f["truncated"], "identify", f["photos"] / "obama/obama_1.jpg"], "gallery"),
    ("damaged-weights", lambda f: ["--model", f["damaged_weights"], "identify", f["photos"] / "obama/obama_1.jpg"], "sha256 mismatch"),
    ("damaged-detector", lambda f: ["--model", f["damaged_detector"], "identify", f["photos"] / "obama/obama_1.jpg"], "YuNet"),
    ("damaged-opencv-detector", lambda f: ["--model", f["damaged_detector"], "--detector", "opencv", "identify",
                                           f["photos"] / "obama/obama_1.jpg"], "YuNet"),
    ("bad-detect-side", lambda f: ["--detect-side", "10", "identify", f["photos"] / "obama/obama_1.jpg"], "detection side"),
    ("malformed-card", lambda f: ["--model", f["malformed_card"], "identify", f["photos"] / "obama/obama_1.jpg"], "malformed"),
    ("missing-model-dir", lambda f: ["--model", f["root"] / "no-models", "verify", f["blank"], f["blank"]], "model directory not found"),
    ("bad-threshold", lambda f: ["--threshold", "loose", "identify", f["photos"] / "obama/obama_1.jpg"], "threshold"),
    ("bad-archive", lambda f: ["gallery", "import", f["notes"]], "not a valid FaceApp gallery archive"),
    ("missing-source", lambda f: ["recognize", "--source", f["root"] / "nowhere.mp4"], "no such file or folder"),
    ("not-a-video", lambda f: ["recognize", "--source", f["notes"]], "cannot read video file"),
    ("mistyped-gallery", lambda f: ["--gallery", f["root"] / "galery.sqlite3", "gallery", "list"], "no gallery at"),
    ("unwritable-output", lambda f: ["identify", f["photos"] / "obama/obama_1.jpg", "--out", f["root"] / "no" / "x.jpg"], "cannot write"),
]


#: Cases also run as a real process (one per kind of failure: image, enrollment, name,
#: gallery file, model file, source), where native libraries could add noise on stderr.
#: The others run ``main()`` in-process with file-descriptor capture (much faster).
IN_A_PROCESS = {"non-image", "enroll-takes-none", "unknown-name-remove", "corrupt-gallery", "damaged-weights", "not-a-video"}


@pytest.mark.parametrize("case, build, message", ERROR_CASES, ids=[case[0] for case in ERROR_CASES])
def test_user_errors(case, build, message, bad_files, fixtures_dir, enrolled_gallery_file, tmp_path, capfd):
    gallery = tmp_path / "gallery.sqlite3"
    shutil.copyfile(enrolled_gallery_file, gallery)
    args = [str(a) for a in build({**bad_files, "photos": fixtures_dir})]
    touched = [gallery] + [Path(a) for a in args if a.endswith(".sqlite3")]
    before = {path: file_digest(path) for path in touched}

    if case in IN_A_PROCESS:
        result = run_cli("--gallery", gallery, *args)
    else:
        result = run_here(capfd, "--gallery", gallery, *args)

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("faceapp: error: ") and message in lines[0], lines[0]
    assert {path: file_digest(path) for path in touched} == before
    assert not (tmp_path / "gallery.sqlite3-wal").exists()


@pytest.mark.parametrize("quiet", [("-q",), ()], ids=["quiet", "not-a-terminal"])
def test_enroll_error_with_many_photos_is_one_line(fixtures_dir, bad_files, tmp_path, capfd, quiet):
    photos = [fixtures_dir / "obama" / name for name in ("obama_1.jpg", "obama_2.jpg", "obama_4.jpg")]
    result = run_here(capfd, "--gallery", tmp_path / "g.sqlite3", *quiet, "enroll", "newbie", *photos, bad_files["blank"])
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["faceapp: error: " + f"{bad_files['blank']}: no face found"]


@pytest.mark.parametrize("argv", [["--det-score", "1.5", "identify", "x.jpg"], ["--min-face", "-1", "identify", "x.jpg"],
                                  ["recognize", "--source", "x.mp4", "--max-frames", "-3"]])
def test_out_of_range_options_are_usage_errors(argv, capsys):
    from faceapp.cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: argument" in err


def test_enroll_warns_when_the_face_is_already_enrolled_as_someone_else(tmp_path, fixtures_dir, capfd):
    gallery = tmp_path / "g.sqlite3"
    obama = fixture_photos(fixtures_dir, "obama")
    ok(run_here(capfd, "--gallery", gallery, "enroll", "obama", *obama[:2]))
    before = file_digest(gallery)
    refused = run_here(capfd, "--gallery", gallery, "enroll", "Barack", obama[2])
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "already enrolled as 'obama'" in refused.stderr and "--force" in refused.stderr
    assert file_digest(gallery) == before  # nothing written
    ok(run_here(capfd, "--gallery", gallery, "enroll", "obama", "--add", obama[2]))  # adding to the same person is fine
    forced = ok(run_here(capfd, "--gallery", gallery, "enroll", "Barack", obama[3], "--force"))
    assert "enrolled 'Barack'" in forced.stdout
    ok(run_here(capfd, "--gallery", gallery, "enroll", "biden", *fixture_photos(fixtures_dir, "biden")))  # a new face
    with Gallery(gallery) as g:
        assert {p.name: p.template_count for p in g.people()} == {"obama": 3, "Barack": 1, "biden": 2}
