"""Hostile and careless input: nothing a user types destroys data, hangs, or ends in a
traceback. One test (or a parametrised set) per class of the reported failures: outputs
that are the gallery or an input, imports that do not fit the model, operating-system
errors, special files, memory, names, and failures that must leave no trace. Every
refusal is one line on stderr, exit status 1, and the gallery unchanged."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import file_digest, refused, run_cli, run_here

from faceapp.storage.gallery import Gallery

REPO = Path(__file__).resolve().parents[1]
OBAMA = "obama/obama_1.jpg"


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    import cv2

    root = tmp_path_factory.mktemp("bad")
    (root / "notes.jpg").write_text("this is text, not a photo")
    cv2.imwrite(str(root / "blank.png"), np.full((240, 320, 3), 128, np.uint8))
    return {"notes": root / "notes.jpg", "blank": root / "blank.png"}


@pytest.fixture
def gallery(enrolled_gallery_path) -> Path:
    """A private copy of the enrolled gallery (obama, biden), closed."""
    return enrolled_gallery_path


def quickly(function, timeout_s: float = 60.0):
    """Run ``function`` but fail (instead of hanging the suite) if it blocks."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function).result(timeout=timeout_s)


# --------------------------------------------------------------------------- 1. outputs that are the gallery or an input
@pytest.fixture(scope="module")
def clip(fixture_video, tmp_path_factory) -> Path:
    """A short copy of the fixture video (recognize reads it)."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    shutil.copyfile(fixture_video.path, path)
    return path


@pytest.mark.parametrize("target", ["gallery", "wal", "hard-link", "input", "model", "each-other"])
def test_outputs_never_overwrite_the_gallery_an_input_or_a_model(target, gallery, clip, tmp_path, capfd, fixtures_dir):
    from faceapp.paths import DEFAULT_MODEL_DIR

    video = tmp_path / "v.avi"
    shutil.copyfile(clip, video)
    link = tmp_path / "link.sqlite3"
    os.link(gallery, link)
    model = next(DEFAULT_MODEL_DIR.glob("*.h5"))
    watched = [gallery, video, model]
    before = {p: file_digest(p) for p in watched}
    base = ["--gallery", gallery, "recognize", "--source", video, "--max-frames", "3"]
    cases = {
        "gallery": [*base, "--events", gallery],
        "wal": ["--gallery", gallery, "gallery", "export", f"{gallery}-wal"],
        "hard-link": ["--gallery", gallery, "gallery", "export", link],
        "input": [*base, "--out", video],
        "model": ["--gallery", gallery, "identify", fixtures_dir / OBAMA, "--out", model],
        "each-other": [*base, "--out", tmp_path / "same.avi", "--events", tmp_path / "same.avi"],
    }
    refused(run_here(capfd, *cases[target]), "overwrite" if target != "each-other" else "same file")
    assert {p: file_digest(p) for p in watched} == before
    assert not (tmp_path / "same.avi").exists() and not Path(f"{gallery}-wal").exists()
    listed = run_here(capfd, "--gallery", gallery, "gallery", "list")
    assert listed.returncode == 0 and "obama" in listed.stdout


def test_a_failed_recording_leaves_no_partial_file_and_keeps_the_old_one(make_recognizer, enrolled_gallery, clip, tmp_path):
    from faceapp.errors import SourceError
    from faceapp.media.reader import Backoff
    from faceapp.media.sources import open_source
    from faceapp.recognition.run import run_recognition

    out, events = tmp_path / "old.avi", tmp_path / "old.jsonl"
    out.write_bytes(b"an earlier recording")
    events.write_text("earlier events\n")

    def failing():  # three frames, then the file turns out to be damaged
        with open_source(str(clip)) as source:
            for number, frame in enumerate(source):
                if number == 3:
                    raise SourceError("damaged frame")
                yield frame

    with pytest.raises(SourceError):
        run_recognition(make_recognizer(enrolled_gallery), str(clip), out=str(out), events=str(events),
                        show_progress=False, opener=failing, max_reconnects=0, backoff=Backoff(0.01))
    assert out.read_bytes() == b"an earlier recording" and events.read_text() == "earlier events\n"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


# --------------------------------------------------------------------------- 2. imports validated against the model
def _export(gallery: Path, tmp_path: Path, capfd) -> dict[str, bytes]:
    archive = tmp_path / "good.zip"
    assert run_here(capfd, "--gallery", gallery, "gallery", "export", archive).returncode == 0
    with zipfile.ZipFile(archive) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _archive(members: dict[str, bytes], path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array.astype("<f4"), allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize("damage, words", [
    ("scaled", ("not a unit vector",)),
    ("three-numbers", ("3 numbers", "makes 256")),  # the fused default: 256-d
    ("nan", ("NaN",)),
    ("far-future", ("not a plausible time",)),
    ("text-quality", ("must be a finite number",)),
    ("huge-integer", ("must be a finite number",)),
])
def test_imports_that_do_not_fit_the_model_are_refused(damage, words, gallery, tmp_path, capfd):
    members = _export(gallery, tmp_path, capfd)
    manifest = json.loads(members["manifest.json"])
    first = next(name for name in members if name.startswith("embeddings/"))
    rows = np.load(io.BytesIO(members[first]))
    if damage == "scaled":
        members[first] = _npy(rows * 1e6)
    elif damage == "three-numbers":
        for name in [n for n in members if n.startswith("embeddings/")]:
            members[name] = _npy(np.load(io.BytesIO(members[name]))[:, :3] / np.sqrt(3) * 0 + 1 / np.sqrt(3))
        manifest["dim"] = 3
    elif damage == "nan":
        rows[0, 0] = np.nan
        members[first] = _npy(rows)
    elif damage == "far-future":
        manifest["people"][0]["created_at"] = 1e300
    elif damage == "huge-integer":  # float() of it overflows
        manifest["people"][0]["templates"][0]["quality"] = 10**400
    else:
        manifest["people"][0]["templates"][0]["quality"] = "high"
    members["manifest.json"] = json.dumps(manifest).encode()
    archive = _archive(members, tmp_path / f"{damage}.zip")
    empty = tmp_path / "fresh.sqlite3"  # an empty gallery has no model yet: the model card decides
    refused(run_here(capfd, "--gallery", empty, "gallery", "import", archive), *words)
    assert not empty.exists()  # a failed import into a new gallery leaves nothing
    before = file_digest(gallery)
    refused(run_here(capfd, "--gallery", gallery, "gallery", "import", archive, "--on-conflict", "merge"))
    assert file_digest(gallery) == before


@pytest.mark.parametrize("column, value", [
    ("people.created_at", "'yesterday'"),
    ("people.created_at", "1e300"),
    ("templates.created_at", "'soon'"),
    ("templates.embedding", "zeroblob(512)"),
    ("templates.embedding", "x'0000c07f' || zeroblob(508)"),  # a NaN, then zeros
    ("templates.quality", "'good'"),
])
def test_corrupted_rows_are_reported_as_corruption(column, value, gallery, capfd, fixtures_dir, tmp_path):
    """Every command either works (it did not need the damaged value; its JSON is valid
    and holds no NaN) or says the gallery is corrupt in one line; one of them notices."""
    table, field = column.split(".")
    with sqlite3.connect(gallery) as db:
        db.execute(f"UPDATE {table} SET {field} = {value} WHERE id = (SELECT MIN(id) FROM {table})")
    db.close()
    noticed = 0
    for command in (["gallery", "list", "--json"], ["identify", fixtures_dir / OBAMA, "--json"],
                    ["gallery", "export", tmp_path / "backup.zip"]):
        result = run_here(capfd, "--gallery", gallery, *command)
        if result.returncode == 0:
            if "--json" in command:
                json.loads(result.stdout, parse_constant=lambda constant: pytest.fail(f"JSON holds {constant}"))
            continue
        refused(result, "corrupt")
        noticed += 1
    assert noticed >= 1


def test_json_output_never_holds_nan():
    from faceapp.cli.common import json_safe

    data = json_safe({"a": float("nan"), "b": [1.0, float("inf"), np.float32("nan")], "c": {"d": -float("inf")}, "e": 0.5})
    assert data == {"a": None, "b": [1.0, None, None], "c": {"d": None}, "e": 0.5}
    json.dumps(data, allow_nan=False)


# --------------------------------------------------------------------------- 3. operating-system errors are one line
def test_too_long_file_names(gallery, tmp_path, capfd, fixtures_dir):
    long = "x" * 300
    refused(run_here(capfd, "--gallery", gallery, "enroll", "someone", tmp_path / f"{long}.jpg"), "too long")
    refused(run_here(capfd, "--gallery", tmp_path / f"{long}.sqlite3", "enroll", "someone", fixtures_dir / OBAMA), "too long")
    refused(run_here(capfd, "--gallery", gallery, "identify", fixtures_dir / OBAMA, "--out", tmp_path / f"{long}.png"), "too long")


def test_a_full_disk_is_said_plainly(gallery, clip, capfd):
    if not Path("/dev/full").exists():
        pytest.skip("this system has no /dev/full")
    refused(run_here(capfd, "--gallery", gallery, "recognize", "--source", clip, "--max-frames", "5", "--events", "/dev/full"),
            "disk is full")


def test_a_photo_named_with_a_byte_that_is_not_utf8(gallery, tmp_path, capfd, fixtures_dir):
    photo = Path(os.fsdecode(bytes(tmp_path) + b"/\xff-photo.jpg"))
    shutil.copyfile(fixtures_dir / "obama/obama_2.jpg", photo)
    enrolled = run_here(capfd, "--gallery", gallery, "enroll", "obama", "--add", photo)
    assert enrolled.returncode == 0, enrolled.stderr
    with Gallery(gallery) as g:
        assert any(t.source.endswith("\ufffd-photo.jpg") for t in g.templates("obama"))
    refused(run_here(capfd, "--gallery", gallery, "identify", Path(os.fsdecode(bytes(tmp_path) + b"/\xfe-missing.jpg"))),
            "no such file")


def _can_mount_read_only() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def test_a_gallery_on_read_only_media_still_serves_list_and_identify(gallery, tmp_path, fixtures_dir):
    """A real read-only mount (a private mount namespace, as root): reading works, changing
    is refused as read-only, and writing an output there says so."""
    if not _can_mount_read_only():
        pytest.skip("needs root and unshare(1) to make a read-only mount in a private namespace")
    media = tmp_path / "media"
    media.mkdir()
    shutil.copyfile(gallery, media / "g.sqlite3")
    photo = fixtures_dir / OBAMA
    faceapp = f"{sys.executable} -m faceapp --gallery {media}/g.sqlite3"
    script = (
        f"mount --bind {media} {media} && mount -o remount,bind,ro {media} && "
        f"{faceapp} gallery list && {faceapp} identify {photo} --json > {tmp_path}/id.json; "
        f"{faceapp} enroll newbie {photo} 2> {tmp_path}/enroll.err; echo $? > {tmp_path}/enroll.rc; "
        f"{faceapp} identify {photo} --out {media}/x.png 2> {tmp_path}/out.err; echo $? > {tmp_path}/out.rc"
    )
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "obama" in result.stdout and "biden" in result.stdout
    assert json.loads((tmp_path / "id.json").read_text())["faces"][0]["name"] == "obama"
    for name, word in (("enroll", "read-only"), ("out", "read-only")):
        assert (tmp_path / f"{name}.rc").read_text().strip() == "1"
        lines = (tmp_path / f"{name}.err").read_text().splitlines()
        assert len(lines) == 1 and word in lines[0], lines
    assert file_digest(media / "g.sqlite3") == file_digest(gallery)
    assert sorted(p.name for p in media.iterdir()) == ["g.sqlite3"]


# --------------------------------------------------------------------------- 4. special files never hang
@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.jpg"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("command", ["enroll", "verify", "identify", "import", "recognize"])
def test_a_fifo_is_refused_at_once(command, fifo, gallery, capfd, fixtures_dir):
    argv = {
        "enroll": ["enroll", "newbie", fifo],
        "verify": ["verify", fifo, fixtures_dir / OBAMA],
        "identify": ["identify", fifo],
        "import": ["gallery", "import", fifo],
        "recognize": ["recognize", "--source", fifo],
    }[command]
    before = file_digest(gallery)
    refused(quickly(lambda: run_here(capfd, "--gallery", gallery, *argv)), "FIFO")
    assert file_digest(gallery) == before


def test_a_fifo_as_the_gallery_is_refused(fifo, capfd):
    refused(quickly(lambda: run_here(capfd, "--gallery", fifo, "gallery", "list")), "not a regular file")


# --------------------------------------------------------------------------- 5. memory is bounded by limits
def _jpeg_declaring(width: int, height: int) -> bytes:
    """A tiny real JPEG whose frame header is patched to declare ``width`` x ``height``."""
    import cv2

    data = bytearray(cv2.imencode(".jpg", np.full((8, 8, 3), 128, np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (its pixel data is a few bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _peak_mb(code: str, timeout: float = 600) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter; its peak resident memory (MB) and stderr."""
    # VmHWM (Linux) is this process's own peak; ru_maxrss would include the forking parent's.
    peak = ("def peak():\n    try:\n        for line in open('/proc/self/status'):\n            if line.startswith('VmHWM:'):\n"
            "                return int(line.split()[1]) / 1024\n    except OSError:\n        pass\n"
            "    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n")
    wrapper = f"import resource, sys\n{peak}try:\n{''.join('    ' + line + chr(10) for line in code.splitlines())}" \
              "finally:\n    print('PEAK', peak(), file=sys.stderr)\n"
    result = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False)
    peak = [line for line in result.stderr.splitlines() if line.startswith("PEAK ")]
    assert peak, result.stderr[-2000:]
    return float(peak[-1].split()[1]), result.stderr


def test_huge_declared_images_are_refused_before_decoding(tmp_path):
    (tmp_path / "huge.jpg").write_bytes(_jpeg_declaring(30000, 30000))
    (tmp_path / "huge.png").write_bytes(_png_declaring(20000, 20000))
    assert (tmp_path / "huge.jpg").stat().st_size < 1000
    peak, err = _peak_mb(
        "from faceapp.errors import ImageReadError\nfrom faceapp.media.imageio import read_image\n"
        f"for name in ('huge.jpg', 'huge.png'):\n"
        f"    try:\n        read_image({str(tmp_path)!r} + '/' + name)\n    except ImageReadError as error:\n"
        f"        print('refused', error, file=sys.stderr)\n"
    )
    assert err.count("refused") == 2 and "30000x30000" in err and "20000x20000" in err
    assert peak < 400, f"{peak:.0f} MB to refuse two images"


def test_identification_over_mixed_size_photos_stays_under_1_5_gb(fixtures_dir, tmp_path):
    """A few hundred photos of every size (up to 4000 px, 1680x1050 among them), evaluated
    with the default 1x and 2x detection scales: peak memory, not time, is checked."""
    import cv2

    rng = np.random.default_rng(0)
    sources = [cv2.imread(str(p)) for p in sorted(fixtures_dir.glob("*/*.jpg")) if "partial" not in p.name]
    sizes = [(1680, 1050), (4000, 3000), (320, 240), (150, 150), (1920, 1080)]
    for index in range(240):
        person = tmp_path / "data" / f"person_{index % 12:02d}"
        person.mkdir(parents=True, exist_ok=True)
        width, height = sizes[index % len(sizes)] if index % 3 else (int(rng.integers(200, 2600)), int(rng.integers(200, 2000)))
        image = cv2.resize(sources[index % len(sources)], (width, height))
        cv2.imwrite(str(person / f"{index:03d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 70])
    peak, err = _peak_mb(
        "from faceapp.cli.main import main\n"
        f"code = main(['-q', '--device', 'cpu', 'eval', 'ident', {str(tmp_path / 'data')!r}, '--out', {str(tmp_path / 'out')!r},"
        " '--strangers', '3'])\nprint('EXIT', code, file=sys.stderr)\n"
    )
    assert "EXIT 0" in err, err[-2000:]
    assert peak < 1536, f"peak memory {peak:.0f} MB"


# --------------------------------------------------------------------------- 6. names
@pytest.mark.parametrize("name, words", [
    ("", "empty"),
    ("   ", "empty"),
    ("\u200b", "invisible"),
    ("\u200b\u2060\ufeff", "invisible"),
    ("\u200d", "visible letters"),
    ("bell\x07", "control"),
    ("\u202eamabo", "invisible"),
    ("unknown", "reserved"),
    ("Unknown #3", "reserved"),
    ("OBAMA", "only by case"),
    ("obama\u200d", "only by case"),
    ("\u3164", "visible letters"),  # Hangul filler: a "letter" that draws nothing
    ("\u2800", "visible letters"),  # blank braille pattern
    ("\u0301", "visible letters"),  # a lone combining accent
    ("\uff35\uff4e\uff4b\uff4e\uff4f\uff57\uff4e", "reserved"),  # full-width "Unknown"
    ("\uff4f\uff42\uff41\uff4d\uff41", "only by case"),  # full-width "obama"
    ("obama\u3164", "only by case"),
])
def test_bad_names_are_refused(name, words, gallery, capfd, fixtures_dir):
    before = file_digest(gallery)
    refused(run_here(capfd, "--gallery", gallery, "enroll", name, fixtures_dir / "biden/biden_1.jpg", "--force"), words)
    refused(run_here(capfd, "--gallery", gallery, "gallery", "rename", "biden", name), words)
    assert file_digest(gallery) == before


def test_names_are_nfc_normalised(tmp_path, capfd, fixtures_dir):
    gallery = tmp_path / "g.sqlite3"
    assert run_here(capfd, "--gallery", gallery, "enroll", "Jose\u0301", fixtures_dir / "biden/biden_1.jpg").returncode == 0
    again = run_here(capfd, "--gallery", gallery, "enroll", "Jos\u00e9", fixtures_dir / "biden/biden_2.jpg")
    refused(again, "already enrolled", "--add")  # the same name, composed differently
    with Gallery(gallery) as g:
        assert [p.name for p in g.people()] == ["Jos\u00e9"]


# --------------------------------------------------------------------------- 7. failure leaves no trace
def test_a_failed_enroll_creates_no_gallery_and_no_folder(tmp_path, capfd, bad_files):
    target = tmp_path / "new" / "deeper" / "g.sqlite3"
    refused(run_here(capfd, "--gallery", target, "enroll", "newbie", bad_files["blank"]), "no face found")
    assert not (tmp_path / "new").exists()
    refused(run_here(capfd, "--gallery", target, "gallery", "import", bad_files["notes"]), "not a valid FaceApp gallery archive")
    assert not (tmp_path / "new").exists()


def test_an_empty_gallery_path_is_an_error(capfd, fixtures_dir):
    default = Path(os.environ["FACEAPP_GALLERY"])
    before = file_digest(default)
    refused(run_here(capfd, "--gallery", "", "enroll", "newbie", fixtures_dir / OBAMA), "--gallery")
    refused(run_here(capfd, "--gallery", " ", "gallery", "list"), "--gallery")
    assert file_digest(default) == before


def test_the_cli_process_refuses_a_fifo_without_hanging(fifo, gallery):
    """The same refusal in a real process, where a blocking open would hang for ever."""
    refused(run_cli("--gallery", gallery, "enroll", "newbie", fifo, timeout=120), "FIFO")
