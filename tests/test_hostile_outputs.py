"""Hostile input, continued: special files and links as outputs, odd bytes in
passphrases and file names, out-of-range options (found by an adversarial run)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cli_helpers import file_digest, refused, run_here

OBAMA = "obama/obama_1.jpg"


@pytest.fixture
def gallery(enrolled_gallery_path) -> Path:
    """A private copy of the enrolled gallery (obama, biden), closed."""
    return enrolled_gallery_path


@pytest.mark.parametrize("command", ["export", "identify"])
def test_a_fifo_output_is_refused_and_kept(command, gallery, tmp_path, capfd, fixtures_dir):
    fifo = tmp_path / ("out.zip" if command == "export" else "out.jpg")
    os.mkfifo(fifo)
    argv = (["gallery", "export", fifo] if command == "export"
            else ["identify", fixtures_dir / OBAMA, "--out", fifo])
    refused(run_here(capfd, "--gallery", gallery, *argv), "FIFO")
    assert fifo.is_fifo()  # not replaced by a regular file


def test_export_through_a_symlink_writes_its_target(gallery, tmp_path, capfd):
    target = tmp_path / "backups" / "real.zip"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "latest.zip"
    link.symlink_to(target)
    assert run_here(capfd, "--gallery", gallery, "gallery", "export", link).returncode == 0
    assert link.is_symlink() and link.resolve() == target
    assert target.read_bytes()[:2] == b"PK"  # the new archive, through the link


def test_an_empty_out_is_an_error_not_ignored(gallery, capfd, fixtures_dir):
    refused(run_here(capfd, "--gallery", gallery, "identify", fixtures_dir / OBAMA, "--out", ""), "empty")


def test_control_characters_in_a_name_are_shown_escaped(gallery, capfd, tmp_path):
    result = run_here(capfd, "--gallery", gallery, "identify", tmp_path / "a\x1b[31mb.jpg")
    line = refused(result)
    assert "\x1b" not in line and "\\x1b[31m" in line


def test_a_passphrase_that_is_not_utf8_is_refused(gallery, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("ODD_PASSPHRASE", os.fsdecode(b"caf\xe9 secret"))
    before = file_digest(gallery)
    result = run_here(capfd, "--gallery", gallery, "gallery", "export", tmp_path / "x.zip", "--encrypt",
                      "--new-passphrase-env", "ODD_PASSPHRASE")
    refused(result, "UTF-8")
    assert file_digest(gallery) == before and not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize("argv, words", [
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--seed", str(2**40)], "--seed"),
    (["train", "--folds", "1"], "--folds"),
    (["eval", "ident", "--folds", "1"], "--folds"),
])
def test_out_of_range_options_are_usage_errors(argv, words, capfd):
    with pytest.raises(SystemExit) as stop:
        run_here(capfd, *argv)
    assert stop.value.code == 2
    assert words in capfd.readouterr().err


def test_a_fifo_model_card_is_refused_without_hanging(tmp_path, capfd, fixtures_dir):
    models = tmp_path / "models"
    models.mkdir()
    os.mkfifo(models / "sface_2021dec.json")
    result = run_here(capfd, "--model", models, "identify", fixtures_dir / OBAMA)
    refused(result, "not a regular file")


def test_recording_a_folder_never_overwrites_one_of_its_photos(gallery, tmp_path, capfd, fixtures_dir):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, photo in (("a.jpg", OBAMA), ("b.jpg", "biden/biden_1.jpg")):
        shutil.copyfile(fixtures_dir / photo, folder / name)
    before = {p.name: file_digest(p) for p in folder.iterdir()}
    for option in ("--out", "--events"):
        refused(run_here(capfd, "--gallery", gallery, "recognize", "--source", folder, option, folder / "b.jpg"),
                   "an input photo")
    assert {p.name: file_digest(p) for p in folder.iterdir()} == before


def test_a_refused_gallery_is_left_without_side_files(gallery, capfd):
    import sqlite3

    with sqlite3.connect(gallery) as conn:
        conn.execute("UPDATE meta SET value = 999 WHERE key = 'schema_version'")
    conn.close()
    before = sorted(p.name for p in gallery.parent.iterdir())
    refused(run_here(capfd, "--gallery", gallery, "gallery", "list"), "newer FaceApp")
    assert sorted(p.name for p in gallery.parent.iterdir()) == before  # no -wal / -shm left behind


def test_a_one_fold_pairs_file_is_refused(tmp_path, capfd, lfw_dir):
    lines = (lfw_dir / "pairs.txt").read_text().splitlines()
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"1\t1\n{lines[1]}\n{lines[301]}\n")
    refused(run_here(capfd, "eval", "lfw", "--pairs", pairs, "--out", tmp_path / "out"), "2 or more")


def test_a_hand_edited_revision_counter_is_survived(gallery, capfd, fixtures_dir):
    import sqlite3

    with sqlite3.connect(gallery) as conn:
        conn.execute("UPDATE meta SET value = 'abc' WHERE key = 'revision'")
    conn.close()
    result = run_here(capfd, "--gallery", gallery, "enroll", "--add", "obama", fixtures_dir / "obama/obama_3.jpg")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


def test_a_failed_export_leaves_no_new_folders(gallery, tmp_path, capfd):
    target = tmp_path / "new" / "deeper" / ("L" * 300 + ".zip")
    refused(run_here(capfd, "--gallery", gallery, "gallery", "export", target), "too long")
    assert not (tmp_path / "new").exists()


def test_a_gallery_path_through_a_file_is_said_plainly(capfd, fixtures_dir):
    refused(run_here(capfd, "--gallery", fixtures_dir / OBAMA / "g.sqlite3", "enroll", "carol", fixtures_dir / OBAMA),
               "is a file, not a folder")


def test_a_damaged_png_is_refused_in_one_line(tmp_path, capfd, fixtures_dir):
    import cv2

    _, png = cv2.imencode(".png", cv2.imread(str(fixtures_dir / OBAMA)))
    data = bytearray(png.tobytes())
    data[29] ^= 0xFF  # inside IHDR: its CRC no longer matches (libpng would print its own line)
    photo = tmp_path / "bad-crc.png"
    photo.write_bytes(bytes(data))
    result = run_here(capfd, "identify", photo)
    refused(result, "damaged")
    assert "libpng" not in result.stderr
