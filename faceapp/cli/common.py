"""What every command shares: the common options, opening the gallery (with its
passphrase), turning options into the pipeline's configuration, and printing JSON.

User errors raise :class:`~faceapp.errors.FaceAppError`; :func:`faceapp.cli.main.main`
prints them as one line on stderr and exits with status 1.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import json
import logging
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from faceapp.cli.argtypes import fraction, non_negative_int

logger = logging.getLogger(__name__)


def common_options(suppress_defaults: bool) -> argparse.ArgumentParser:
    """Options accepted before or after the command. After it, their defaults are
    suppressed so that a value given before the command is not reset."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")

    def default(value):
        return argparse.SUPPRESS if suppress_defaults else value

    group.add_argument("--gallery", metavar="PATH|URL", default=default(None), help="gallery: a file, or postgresql://USER@HOST/DB for a gallery shared on a server "
                       "(default: $FACEAPP_GALLERY, else a file in the user data directory)")
    group.add_argument("--model", metavar="DIR", default=default(None),
                       help="model directory, a model card file (DIR/NAME.json), 'accurate' for the fused SFace + dlib ResNet "
                            "model (the default) or 'sface' for SFace alone (faster: about 0.65x the embedding time a face; "
                            "each model has galleries of its own) (default: $FACEAPP_MODELS, else the fused model, or the "
                            "shipped model a gallery was made with)")
    group.add_argument("--device", choices=("auto", "cpu", "gpu"), default=default("auto"), help="where the embedding CNN runs (default: auto)")
    group.add_argument("--threshold", metavar="T", default=default(None), help="decision rule: a preset, strict, balanced or lenient (at most 0.1%%, 1%%, 5%% of strangers' faces named, "
                       "calibrated for the gallery's size), or a cosine similarity for one fixed threshold (default: balanced)")
    group.add_argument("--det-score", type=fraction, default=default(0.8), metavar="S", help="face detector score threshold (default: 0.8)")
    group.add_argument("--detector", choices=("auto", "opencv", "tf"), default=default("auto"),
                       help="face detector runtime: tf (our TensorFlow port of YuNet: LiteRT on the CPU, TensorFlow on a "
                       "GPU), opencv (OpenCV's DNN), auto (tf where TensorFlow's runtime is installed; default)")
    group.add_argument("--detect-side", type=non_negative_int, default=default(960), metavar="PX",
                       help="detect faces in video frames on a copy shrunk to this many pixels on its longer side "
                       "(faster; the smallest faces found grow in proportion: see the README); 0: full resolution "
                       "(default: 960; still photos are detected at their own resolution, up to 1920 px)")
    group.add_argument("--min-face", type=non_negative_int, default=default(20), metavar="PX", help="ignore faces smaller than this many pixels (default: 20)")
    group.add_argument("--flip-fusion", action="store_true", default=default(False),
                       help="embed each face and its mirror image (slightly more accurate, twice the embedding cost)")
    group.add_argument("-v", "--verbose", action="store_true", default=default(False), help="log what happens")
    group.add_argument("-q", "--quiet", action="store_true", default=default(False), help="no progress bars")
    group.add_argument("--passphrase-env", metavar="VAR", default=default(None),
                       help="environment variable holding the passphrase of an encrypted gallery or export "
                       "(default: $FACEAPP_PASSPHRASE, then the OS keyring, then a prompt)")
    return common


def pipeline_config(args: argparse.Namespace):
    """The :class:`~faceapp.recognition.pipeline.PipelineConfig` the common options
    describe, validated (ConfigError). The only place options become a pipeline."""
    from faceapp.recognition.pipeline import PipelineConfig
    from faceapp.vision.detection import DetectorConfig

    detector = DetectorConfig(score_threshold=args.det_score, min_face_size=args.min_face, backend=args.detector,
                              work_side=args.detect_side)
    config = PipelineConfig(
        model_dir=args.model, device=args.device, threshold=args.threshold, detector=detector, flip=args.flip_fusion,
    )
    config.validate()
    return config


def build_recognizer(args: argparse.Namespace, gallery=None, *, live: bool = False):
    """The loaded :class:`~faceapp.recognition.pipeline.Recognizer` of the options.
    ``live``: a command that runs long (recognize): it may build a large gallery's search
    index in the background; a one-off command uses a saved one, else searches exactly."""
    import dataclasses

    from faceapp.recognition.pipeline import Recognizer

    return Recognizer.create(dataclasses.replace(pipeline_config(args), index_builds=live), gallery)


def ask_passphrase(args: argparse.Namespace, what: str, *, new: bool = False) -> str:
    """A passphrase for ``what`` (a gallery or export file): from the environment variable
    named by --passphrase-env / --new-passphrase-env; for an existing one also from
    $FACEAPP_PASSPHRASE and the OS keyring; else asked on the terminal (twice if new)."""
    import getpass

    from faceapp.storage.crypto import PASSPHRASE_ENV, PassphraseError, keyring_passphrase

    variable = getattr(args, "new_passphrase_env" if new else "passphrase_env", None) or (None if new else PASSPHRASE_ENV)
    if variable and os.environ.get(variable):
        return os.environ[variable]
    if not new and (remembered := keyring_passphrase(what)):
        return remembered
    if not sys.stdin.isatty():
        hint = f"set {variable}" if variable else "pass --new-passphrase-env VAR"
        raise PassphraseError(f"{what}: a {'new ' if new else ''}passphrase is needed: {hint}, or run in a terminal to be asked")
    first = getpass.getpass(f"{'new ' if new else ''}passphrase for {what}: ")
    if new and getpass.getpass("repeat the new passphrase: ") != first:
        raise PassphraseError("the two passphrases differ; nothing was changed")
    return first


def gallery_path(args: argparse.Namespace) -> Path | str:
    """The gallery file (or server URL, a str) of ``--gallery``, else the default one.
    ``--gallery ""`` is an error, not the default gallery."""
    from faceapp.errors import FaceAppError
    from faceapp.paths import default_gallery_path
    from faceapp.storage.locations import check_location, is_server_url

    if args.gallery is not None and not str(args.gallery).strip():
        raise FaceAppError('--gallery "" names no file: give a gallery path, or leave --gallery out for the default one')
    given = args.gallery if args.gallery else default_gallery_path()
    try:
        check_location(given)  # a mistyped scheme is refused, not made into a local file
    except ValueError as error:
        raise FaceAppError(str(error)) from None
    if is_server_url(given):
        return str(given)
    path = Path(args.gallery).expanduser() if args.gallery else default_gallery_path()
    if os.path.islink(path) and not os.path.exists(path):
        try:
            os.stat(path)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise FaceAppError(f"{path}: is a symlink loop, not a gallery") from None
    return path


def open_gallery(args: argparse.Namespace, create: bool = False, read_only: bool = False):
    """The gallery of ``--gallery`` (else the default). A gallery named explicitly must
    exist unless the command adds to it (``create``), so a mistyped path is an error
    rather than a silent new, empty gallery. ``read_only`` for commands that only read
    (a gallery on read-only media still serves them)."""
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.locations import describe, is_server_url

    path = gallery_path(args)
    if is_server_url(path):
        passphrase = ask_passphrase(args, describe(path)) if Gallery.is_encrypted_file(path) else None
        return Gallery(path, passphrase=passphrase, create=create)
    if not create and not args.gallery and not os.path.lexists(path):
        # The default gallery before the first enrollment: reading sees an empty gallery
        # (a temporary one, so nothing is left behind); changing it has nothing to change.
        if not read_only:
            from faceapp.errors import FaceAppError

            raise FaceAppError(f"no gallery yet at {path}: enroll someone first")
        folder = tempfile.mkdtemp(prefix="faceapp-empty-")
        atexit.register(shutil.rmtree, folder, True)
        return Gallery(Path(folder) / path.name, create=True)
    passphrase = ask_passphrase(args, str(path)) if Gallery.is_encrypted_file(path) else None
    return Gallery(path, passphrase=passphrase, read_only=read_only, create=create or not args.gallery)


@contextlib.contextmanager
def no_trace_on_failure(path: Path | str):
    """Around a command that may create the gallery ``path``: when it fails, remove the
    gallery file and the folders it created, so a failed enroll or import leaves nothing.
    (On a server, the failed command's transaction was rolled back: nothing to remove.)"""
    from faceapp.files import gallery_files
    from faceapp.storage.locations import is_server_url

    if is_server_url(path):
        yield
        return
    path = Path(path)

    # What was there before (a symlink, even a dangling one, and any side files) stays;
    # through a symlink, what the command created at its target goes too.
    targets = [path] + ([Path(os.path.realpath(path))] if os.path.islink(path) else [])
    before = {f for target in targets for f in gallery_files(target) if os.path.lexists(f)}
    missing_parents = []
    parent = targets[-1].parent
    while not parent.exists() and parent != parent.parent:
        missing_parents.append(parent)
        parent = parent.parent
    try:
        yield
    except BaseException:
        if targets[-1] in before:  # the gallery was there: never touch it or its side files
            raise
        for target in targets:
            for file in gallery_files(target):
                if file not in before:
                    with contextlib.suppress(OSError):
                        file.unlink(missing_ok=True)
        for folder in missing_parents:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def protected_files(args: argparse.Namespace, *inputs: tuple[str, str | os.PathLike]) -> list[tuple[str, Path]]:
    """What an output file must never overwrite: the gallery and its SQLite companions,
    the model files in use, and the command's ``inputs`` (``(description, path)``)."""
    from faceapp.errors import FaceAppError
    from faceapp.files import gallery_files
    from faceapp.paths import DEFAULT_MODEL_DIR, model_dir

    protected: list[tuple[str, Path]] = []
    with contextlib.suppress(FaceAppError):  # an unusable --gallery is reported by the command itself
        location = gallery_path(args)
        if not isinstance(location, str):  # a server gallery has no file to protect
            protected += [("the gallery", f) for f in gallery_files(location)]
    for folder in {model_dir(args.model), DEFAULT_MODEL_DIR}:
        with contextlib.suppress(OSError):
            protected += [("a model file", f) for f in Path(folder).iterdir() if f.is_file()]
    protected += [(description, Path(os.fspath(path))) for description, path in inputs]
    return protected


def check_output_folder(path: str | os.PathLike, what: str) -> Path:
    """A folder a command writes its reports into: refused when it exists as a file."""
    from faceapp.errors import FaceAppError

    folder = Path(path)
    if not str(path).strip():
        raise FaceAppError(f"the {what} folder name is empty")
    if folder.exists() and not folder.is_dir():
        raise FaceAppError(f"{folder}: is a file; the {what} needs a folder (it writes several files there)")
    return folder


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only for a person watching a terminal."""
    return not args.quiet and sys.stderr.isatty()


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:  # numpy scalars
        return json_safe(value.item())
    return value


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (paths and other objects as strings; never NaN)."""
    json.dump(json_safe(data), sys.stdout, indent=2, ensure_ascii=False, default=str, allow_nan=False)
    sys.stdout.write("\n")


def local_time(timestamp: float | None, spec: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A unix time in the local time zone as text (``-`` for None)."""
    import datetime as dt

    return "-" if timestamp is None else dt.datetime.fromtimestamp(timestamp).strftime(spec)


def print_report(args: argparse.Namespace, report: dict[str, Any], text: str) -> None:
    """``report`` as JSON with ``--json``, else the human-readable ``text``."""
    if getattr(args, "json", False):
        print_json(report)
    else:
        print(text)
