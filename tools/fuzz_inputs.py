"""Input fuzzing for ``tools/stress.py fuzz``: hypothesis generates import archives
(valid ones, then mutated manifests, bad ``.npy`` headers, unsafe member names, lying
sizes, corrupted bytes, encrypted ones) and image files. Every case must end in success
or a FaceAppError; any other exception, or a case slower than the hang limit, is a
failure. ``tests/test_reliability.py`` runs a short version.
"""

from __future__ import annotations

import io
import json
import random
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from stress_data import FAST_KDF, HANG_LIMIT_S, JPEG, logical_state, templates_for

from faceapp.errors import FaceAppError
from faceapp.storage.gallery import Gallery

# --------------------------------------------------------------------------- fuzzing


@dataclass
class FuzzReport:
    cases: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)  # target:ok / target:<ErrorClass>
    failures: list[str] = field(default_factory=list)
    slowest_s: float = 0.0

    def describe(self) -> str:
        total = sum(self.cases.values())
        per = ", ".join(f"{k} {v}" for k, v in sorted(self.cases.items()))
        return (
            f"fuzz: {total} cases ({per}); {len(self.failures)} failure(s); "
            f"slowest case {self.slowest_s:.2f} s"
        )


def _valid_archive(rng: random.Random, tmp: Path) -> bytes:
    path = tmp / f"src-{rng.random()}.db"
    with Gallery(path) as g:
        for k in range(rng.randint(0, 3)):
            g.add_person(f"p{k}", templates_for(rng.randint(0, 10**6), rng.randint(1, 3), thumb_bytes=20))
        from faceapp.storage.archive import export_gallery

        out = tmp / f"src-{rng.random()}.zip"
        export_gallery(g, out)
    data = out.read_bytes()
    out.unlink()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return data


def _rezip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def _members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def _json_values():
    from hypothesis import strategies as st

    return st.recursive(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=10,
    )


def _mutate_archive(draw, data: bytes) -> bytes:
    """One hostile change to a valid archive's bytes."""
    from hypothesis import strategies as st

    kind = draw(st.sampled_from(
        ["manifest_field", "manifest_bytes", "npy_header", "npy_shape", "member_name", "size_lie", "flip", "truncate",
         "random", "bomb_thumbnail", "none"]
    ))
    members = _members(data)
    if kind == "manifest_field":
        manifest = json.loads(dict(members)["manifest.json"])
        target = manifest
        if manifest["people"] and draw(st.booleans()):
            target = draw(st.sampled_from(manifest["people"]))
            if target["templates"] and draw(st.booleans()):
                target = draw(st.sampled_from(target["templates"]))
        key = draw(st.sampled_from(sorted(target) + ["extra"]))
        if draw(st.booleans()):
            target[key] = draw(_json_values())
        else:
            target.pop(key, None)
        text = json.dumps(manifest, allow_nan=True).encode()
        members = [(n, text if n == "manifest.json" else d) for n, d in members]
        return _rezip(members)
    if kind == "manifest_bytes":
        members = [(n, draw(st.binary(max_size=200)) if n == "manifest.json" else d) for n, d in members]
        return _rezip(members)
    if kind in ("npy_header", "npy_shape"):
        npys = [n for n, _ in members if n.endswith(".npy")]
        if not npys:
            return data
        victim = draw(st.sampled_from(npys))
        if kind == "npy_shape":
            shape = draw(st.sampled_from(["(10000000000, 128)", "(3, 128, 2)", "(-1, 128)", "()", "(2**40,)", "(0, 128)"]))
            dtype = draw(st.sampled_from(["'<f4'", "'|O'", "'<f8'", "'<i4'", "[('a', '<f4')]"]))
            order = draw(st.sampled_from(["False", "True"]))
            header = f"{{'descr': {dtype}, 'fortran_order': {order}, 'shape': {shape}, }}"
            header = header.ljust(118) + "\n"
            blob = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + draw(st.binary(max_size=64))
        else:
            original = dict(members)[victim]
            cut = draw(st.integers(0, min(len(original), 140)))
            blob = original[:cut] + draw(st.binary(max_size=40)) + original[cut + 4 :]
        return _rezip([(n, blob if n == victim else d) for n, d in members])
    if kind == "member_name":
        bad = draw(st.sampled_from(["../evil.npy", "/abs/x.npy", "a/../../b", "C:\\x.npy", "embeddings//0000.npy",
                                    "x\x00y", "..", "embeddings\\0000.npy", "./manifest.json"]))
        name, payload = draw(st.sampled_from(members))
        return _rezip(members + [(bad, payload)]) if draw(st.booleans()) else _rezip(
            [(bad if n == name else n, d) for n, d in members])
    if kind == "size_lie":
        out = bytearray(data)
        pos = out.find(b"PK\x01\x02")
        if pos >= 0:
            size = draw(st.sampled_from([0, 1, 0xFFFFFFFE, 0x7FFFFFFF, 2**26 + 1]))
            field_at = pos + draw(st.sampled_from([20, 24]))  # compressed / uncompressed size
            out[field_at : field_at + 4] = size.to_bytes(4, "little")
        return bytes(out)
    if kind == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(out) - 1))
            out[i] = draw(st.integers(0, 255))
        return bytes(out)
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "bomb_thumbnail":
        manifest = json.loads(dict(members)["manifest.json"])
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for n, d in members:
                if n != "manifest.json":
                    zf.writestr(n, d)
            zf.writestr("thumbnails/big.jpg", JPEG + bytes(5 << 20))  # 5 MiB of zeros -> ~5 KiB
            for p in manifest["people"]:
                for t in p["templates"]:
                    t["thumbnail"] = "thumbnails/big.jpg"
            zf.writestr("manifest.json", json.dumps(manifest))
        return buf.getvalue()
    return data


TARGETS = ("archive", "image", "names", "paths", "rows")


def fuzz(count: int, targets: tuple[str, ...] = TARGETS, seed: int | None = 0,
         png_chunk_attack: bool = True, log=print) -> FuzzReport:
    """Run ``count`` hypothesis cases per target; failures are collected, not raised.

    ``png_chunk_attack``: also write huge lengths into image headers (finds the OpenCV 5
    PNG chunk allocation problem; off where faceapp.media.imageio has no guard for it yet)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    report = FuzzReport()
    common = {"max_examples": count, "deadline": None, "database": None, "derandomize": seed is not None,
              "suppress_health_check": list(HealthCheck)}

    def timed(target: str, fn) -> None:
        start = time.perf_counter()
        try:
            outcome = fn()
        except FaceAppError as e:
            outcome = type(e).__name__
        except Exception as e:  # noqa: BLE001  # any other exception is the finding
            message = f"{target}: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
            if message not in report.failures:
                report.failures.append(message)
                log(f"FAIL {message}")
            outcome = "CRASH"
        elapsed = time.perf_counter() - start
        report.slowest_s = max(report.slowest_s, elapsed)
        if elapsed > HANG_LIMIT_S:
            report.failures.append(f"{target}: a case took {elapsed:.1f} s (hang limit {HANG_LIMIT_S} s)")
        report.cases[target] += 1
        report.outcomes[f"{target}:{outcome}"] += 1

    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        base_rng = random.Random(seed)
        bases = [_valid_archive(base_rng, tmp) for _ in range(4)]

        if "archive" in targets:
            from faceapp.storage.archive import import_gallery
            from faceapp.storage.crypto import seal_encrypted

            @settings(**common)
            @given(st.data())
            def archive_case(data) -> None:
                raw = _mutate_archive(data.draw, data.draw(st.sampled_from(bases)))
                encrypted = data.draw(st.sampled_from([False, False, False, True]))
                passphrase = None
                if encrypted:
                    raw = seal_encrypted(raw, "pw", fmt="faceapp-gallery-zip", kdf=FAST_KDF)
                    if data.draw(st.booleans()):
                        cut = data.draw(st.integers(0, len(raw) - 1))
                        raw = raw[:cut] + bytes([raw[cut] ^ 1]) + raw[cut + 1 :]
                    passphrase = data.draw(st.sampled_from([None, "pw", "wrong"]))
                path = tmp / "case.zip"
                path.write_bytes(raw)
                gpath = tmp / "target.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(str(gpath) + suffix).unlink(missing_ok=True)

                def run():
                    with Gallery(gpath) as g:
                        g.add_person("p0", templates_for(7, 1, thumb_bytes=10))
                        before = logical_state(g)
                        try:
                            import_gallery(g, path, on_conflict=data.draw(st.sampled_from(["merge", "skip", "error"])),
                                           passphrase=passphrase)
                        except FaceAppError:
                            if logical_state(g) != before:
                                raise AssertionError("a refused import changed the gallery") from None
                            raise
                        return "ok"

                timed("archive", run)

            archive_case()

        if "image" in targets:
            from faceapp.media.imageio import decode_image, encode_jpeg, read_image

            sample = np.zeros((16, 16, 3), np.uint8)
            sample[4:12, 4:12] = 200
            import cv2

            seeds = [encode_jpeg(sample), cv2.imencode(".png", sample)[1].tobytes(), cv2.imencode(".bmp", sample)[1].tobytes(),
                     cv2.imencode(".webp", sample)[1].tobytes() if cv2.haveImageWriter(".webp") else b"RIFF"]

            @settings(**common)
            @given(st.data())
            def image_case(data) -> None:
                base = data.draw(st.sampled_from(seeds + [b""]))
                how = data.draw(st.sampled_from(["random", "flip", "truncate"] + ["header"] * png_chunk_attack))
                raw = bytearray(base)
                if how == "random" or not raw:
                    raw = bytearray(data.draw(st.binary(max_size=400)))
                elif how == "flip":
                    for _ in range(data.draw(st.integers(1, 6))):
                        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
                elif how == "truncate":
                    raw = raw[: data.draw(st.integers(0, len(raw)))]
                else:  # claim enormous dimensions in the header area
                    at = data.draw(st.integers(0, min(len(raw), 40) - 1))
                    raw[at : at + 4] = b"\x7f\xff\xff\xff"
                to_file = data.draw(st.booleans())

                def run():
                    if to_file:
                        p = tmp / "case.img"
                        p.write_bytes(bytes(raw))
                        image = read_image(p)
                    else:
                        image = decode_image(bytes(raw), "case")
                    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                            and image.shape[2] == 3):
                        raise AssertionError(f"decoded to {type(image).__name__} {getattr(image, 'shape', '')}")
                    return "ok"

                timed("image", run)

            image_case()

        for target, make in (("names", _names_target), ("paths", _paths_target), ("rows", _rows_target)):
            if target in targets:
                make(st, given, settings(**common), timed, tmp)()
    return report


# --------------------------------------------------------------------------- hostile input (issue: names, paths, rows)
#: Characters a careless or hostile user may type: invisible, control, bidirectional,
#: combining, white space, and ordinary letters.
_TRICKY = "aAbBzZ \t\n\r\x00\x07\x1b\u00a0\u200b\u200c\u200d\u2060\ufeff\u202e\u2066\u0301\u00e9e\u2028#3"


def _names_target(st, given, configured, timed, tmp: Path):
    """A name goes through enroll and rename: success leaves it NFC-normalised and unique
    by look (case, invisible characters); anything else is a one-line GalleryError."""
    import unicodedata

    from faceapp.storage.records import name_key

    names = st.one_of(st.text(alphabet=_TRICKY, max_size=12), st.text(max_size=20),
                      st.sampled_from(["unknown", "Unknown #7", "UNKNOWN", "ada", "Ada\u200d", "x" * 101, "  ", ""]))

    @configured
    @given(names, st.booleans())
    def case(name, rename) -> None:
        path = tmp / "names.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)

        def run():
            with Gallery(path) as g:
                g.add_person("Ada", templates_for(1, 1, thumb_bytes=10))
                before = logical_state(g)
                try:
                    if rename:
                        g.rename("Ada", name)
                    else:
                        g.add_person(name, templates_for(2, 1, thumb_bytes=10))
                except FaceAppError:
                    if logical_state(g) != before:
                        raise AssertionError("a refused name changed the gallery") from None
                    raise
                stored = [p.name for p in g.people()]
                if unicodedata.normalize("NFC", name).strip() not in stored:
                    raise AssertionError(f"{name!r} was not stored in NFC form: {stored!r}")
                if len({name_key(n) for n in stored}) != len(stored):
                    raise AssertionError(f"two people look alike: {stored!r}")
            return "ok"

        timed("names", run)

    return case


def _paths_target(st, given, configured, timed, tmp: Path):
    """An output path that may be the gallery, its -wal, a hard link to it, an input, a
    folder, a too-long name, a missing folder, a FIFO or /dev/full: the write either
    succeeds completely or is refused in one line, and the gallery never changes."""
    import hashlib
    import os

    from faceapp.files import AtomicOutput, check_output_path, gallery_files

    gallery = tmp / "paths.db"
    with Gallery(gallery) as g:
        g.add_person("Ada", templates_for(3, 2, thumb_bytes=10))
    digest = hashlib.sha256(gallery.read_bytes()).hexdigest()
    photo = tmp / "input.jpg"
    photo.write_bytes(JPEG + b"photo")
    link = tmp / "link.db"
    if not link.exists():
        os.link(gallery, link)
    fifo = tmp / "pipe"
    if not fifo.exists():
        os.mkfifo(fifo)
    outputs = tmp / "outputs"
    outputs.mkdir(exist_ok=True)
    choices = [gallery, Path(f"{gallery}-wal"), link, photo, outputs, tmp / ("y" * 300), tmp / "missing" / "x.json",
               Path("/dev/full"), fifo, outputs / "new.json", outputs / "existing.json", Path("")]
    (outputs / "existing.json").write_text("old")

    @configured
    @given(st.sampled_from(choices), st.binary(max_size=2000), st.booleans())
    def case(target, data, fail_midway) -> None:
        def run():
            (outputs / "existing.json").write_text("old")
            protected = [("the gallery", f) for f in gallery_files(gallery)] + [("the input", photo)]
            path = check_output_path(target, protected, "report")
            if path == fifo:
                return "fifo-skipped"  # opening a FIFO for writing blocks until a reader comes: refused upstream
            try:
                with AtomicOutput(path, "wb", what="report") as handle:
                    handle.write(data)
                    if fail_midway:
                        raise FaceAppError("stopped midway")
            finally:
                leftovers = [p.name for p in outputs.iterdir() if p.name.startswith(".")]
                if leftovers:
                    raise AssertionError(f"temporary files left behind: {leftovers}")
                if hashlib.sha256(gallery.read_bytes()).hexdigest() != digest:
                    raise AssertionError("the gallery changed")
                if fail_midway and (outputs / "existing.json").read_bytes() != b"old":
                    raise AssertionError("a failed write truncated an existing file")
            return "ok"

        timed("paths", run)

    return case


def _rows_target(st, given, configured, timed, tmp: Path):
    """A gallery whose rows were edited by hand: reading it works or says "corrupt"."""
    import sqlite3

    columns = [("people", "created_at"), ("people", "name"), ("templates", "embedding"), ("templates", "dim"),
               ("templates", "quality"), ("templates", "created_at"), ("templates", "model_id"), ("templates", "source")]
    values = st.one_of(st.text(max_size=12), st.binary(max_size=600), st.floats(allow_nan=True, allow_infinity=True),
                       st.integers(-(2**63), 2**63 - 1), st.none())

    @configured
    @given(st.sampled_from(columns), values)
    def case(column, value) -> None:
        path = tmp / "rows.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        with Gallery(path) as g:
            g.add_person("Ada", templates_for(4, 2, thumb_bytes=10))
        table, field = column
        with sqlite3.connect(path) as db:
            try:
                db.execute(f"UPDATE {table} SET {field} = ? WHERE id = (SELECT MIN(id) FROM {table})", (value,))
            except sqlite3.IntegrityError:  # NOT NULL: the schema itself refuses it
                return
        db.close()

        def run():
            with Gallery(path) as g:
                g.people()
                g.snapshot()
                g.matrix("stress-model")
            return "ok"

        timed("rows", run)

    return case
