"""The ``faceapp`` command line.

Every command reuses the core (:mod:`faceapp.recognition.pipeline`, :mod:`faceapp.storage.gallery`). User
errors (a bad file, an unknown name, a broken gallery or model) print one line on stderr
and exit with status 1, never a traceback; the gallery is left as it was.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faceapp import __version__
from faceapp.cli.argtypes import fraction, non_negative_int, positive_int
from faceapp.errors import FaceAppError, NoFaceError, SourceError

logger = logging.getLogger("faceapp")

EXIT_USER_ERROR = 1


# --------------------------------------------------------------------------- helpers
def _ask_passphrase(args, what: str, *, new: bool = False) -> str:
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


def _open_gallery(args, create: bool = False):
    """The gallery of ``--gallery`` (else the default). A gallery named explicitly must
    exist unless the command adds to it (``create``), so a mistyped path is an error
    rather than a silent new, empty gallery."""
    from faceapp.paths import default_gallery_path
    from faceapp.storage.gallery import Gallery

    if args.gallery and not create and not Path(args.gallery).expanduser().exists():
        raise FaceAppError(f"no gallery at {args.gallery} (enroll someone first, or check the path)")
    path = Path(args.gallery).expanduser() if args.gallery else default_gallery_path()
    passphrase = _ask_passphrase(args, str(path)) if Gallery.is_encrypted_file(path) else None
    return Gallery(path, passphrase=passphrase)


def _show_progress(args) -> bool:
    """Progress bars only for a person watching a terminal."""
    return not args.quiet and sys.stderr.isatty()


def _recognizer(args, gallery=None):
    from faceapp.recognition.pipeline import PipelineConfig, Recognizer
    from faceapp.vision.detection import DetectorConfig

    detector = DetectorConfig(score_threshold=args.det_score, min_face_size=args.min_face)
    config = PipelineConfig(
        model_dir=args.model, device=args.device, threshold=args.threshold, detector=detector, flip=args.flip_fusion,
    )
    return Recognizer.create(config, gallery)


def _print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _largest_face(recognizer, path: str):
    from faceapp.media.imageio import read_image

    image = read_image(path)
    detections = recognizer.detect(image)
    if not detections:
        raise NoFaceError(f"{path}: no face found")
    if len(detections) > 1:
        logger.warning("%s: %d faces found; using the largest", path, len(detections))
    detection = max(detections, key=lambda d: d.area)
    face = recognizer.align(image, [detection])[0]
    return face, recognizer.embed([face])[0]


# --------------------------------------------------------------------------- commands
def cmd_enroll(args) -> int:
    from faceapp.recognition.enrollment import samples_from_files

    with _open_gallery(args, create=True) as gallery:
        recognizer = _recognizer(args, gallery)
        samples = samples_from_files(recognizer, args.images, progress=_show_progress(args))
        templates = [s.template(recognizer.embedder.model_id) for s in samples]
        existing = {p.name for p in gallery.people()}
        from faceapp.storage.gallery import normalize_name

        name = normalize_name(args.name)
        if name in existing:
            if not args.add:
                raise FaceAppError(f"'{name}' is already enrolled: pass --add to add these photos to them")
            person = gallery.add_templates(name, templates)
            print(f"added {len(templates)} template(s) to '{person.name}' (now {person.template_count})")
        else:
            person = gallery.add_person(name, templates)
            print(f"enrolled '{person.name}' with {person.template_count} template(s) in {gallery.path}")
    return 0


def cmd_identify(args) -> int:
    from faceapp.media.imageio import read_image, write_image
    from faceapp.media.overlay import draw_results
    from faceapp.media.privacy import PrivacyPolicy, check_image_write

    with _open_gallery(args) as gallery:
        if args.out:  # no face image is written from an embeddings-only gallery
            check_image_write(PrivacyPolicy.for_gallery(gallery, "none"), f"the image {args.out}")
        recognizer = _recognizer(args, gallery)
        image = read_image(args.image)
        result = recognizer.process(image)
    if args.out:
        write_image(args.out, draw_results(image, result))
    if args.json:
        _print_json({
            "image": str(args.image),
            "threshold": recognizer.threshold,
            "faces": [f.to_json() for f in result.faces],
        })
        return 0
    if not result.faces:
        print(f"{args.image}: no face found")
        return 0
    for number, face in enumerate(result.faces, 1):
        x, y, w, h = (round(v) for v in face.detection.box)
        name = face.match.name or "unknown"
        extra = "" if face.match.name else f" (closest: {face.match.best_name})" if face.match.best_name else ""
        print(f"face {number}: box x={x} y={y} w={w} h={h}  {name}  similarity {face.match.similarity:.3f}{extra}")
    return 0


def cmd_verify(args) -> int:
    recognizer = _recognizer(args)
    _, first = _largest_face(recognizer, args.first)
    _, second = _largest_face(recognizer, args.second)
    similarity = float(first @ second)
    same = similarity >= recognizer.threshold
    if args.json:
        _print_json({"same_person": same, "similarity": round(similarity, 4), "threshold": recognizer.threshold})
    else:
        verdict = "same person" if same else "different people"
        print(f"{verdict}: similarity {similarity:.3f} (threshold {recognizer.threshold:.3f})")
    return 0


def cmd_recognize(args) -> int:
    from faceapp.recognition.run import run_recognition

    with _open_gallery(args) as gallery:
        recognizer = _recognizer(args, gallery)
        summary = run_recognition(
            recognizer, args.source, out=args.out, events=args.events, max_frames=args.max_frames,
            show_progress=_show_progress(args), tracking=not args.no_tracking, blur=args.blur,
        )
    print(summary.describe())
    return 0


def cmd_gallery(args) -> int:
    with _open_gallery(args, create=args.gallery_command == "import") as gallery:
        action = args.gallery_command
        if action == "list":
            people = gallery.people()
            if args.json:
                import datetime as dt

                _print_json([
                    {"name": p.name, "templates": p.template_count,
                     "created": dt.datetime.fromtimestamp(p.created_at).isoformat(timespec="seconds")}
                    for p in people
                ])
            elif not people:
                print(f"the gallery {gallery.path} is empty")
            else:
                import datetime as dt

                width = max(len(p.name) for p in people)
                for p in people:
                    when = dt.datetime.fromtimestamp(p.created_at).strftime("%Y-%m-%d %H:%M")
                    print(f"{p.name:<{width}}  {p.template_count:>3} template(s)  added {when}")
        elif action == "rename":
            person = gallery.rename(args.old, args.new)
            print(f"renamed '{args.old}' to '{person.name}'")
        elif action == "merge":
            person = gallery.merge(args.source, args.target)
            print(f"merged '{args.source}' into '{person.name}' ({person.template_count} template(s))")
        elif action == "remove":
            gallery.remove(args.name)
            print(f"removed '{args.name}'")
        elif action == "export":
            from faceapp.storage.archive import export_gallery

            passphrase = _ask_passphrase(args, args.file, new=True) if args.encrypt else None
            path = export_gallery(gallery, args.file, passphrase=passphrase)
            print(f"exported {len(gallery.people())} people to {path}" + (" (encrypted)" if passphrase else ""))
        elif action == "import":
            from faceapp.storage.archive import archive_is_encrypted, import_gallery

            passphrase = _ask_passphrase(args, args.file) if archive_is_encrypted(args.file) else None
            summary = import_gallery(gallery, args.file, on_conflict=args.on_conflict, passphrase=passphrase)
            print(
                f"imported {summary.people_added} new people, merged {summary.people_merged}, "
                f"skipped {summary.people_skipped}; {summary.templates_added} template(s) added"
            )
        elif action == "encrypt":
            gallery.encrypt(_ask_passphrase(args, str(gallery.path), new=True))
            print(f"encrypted the faces in {gallery.path} (names stay readable); the passphrase cannot be recovered")
        elif action == "decrypt":
            gallery.decrypt(_ask_passphrase(args, str(gallery.path)))
            print(f"{gallery.path} is no longer encrypted")
        elif action == "passwd":
            old = _ask_passphrase(args, str(gallery.path))
            gallery.change_passphrase(old, _ask_passphrase(args, str(gallery.path), new=True))
            print(f"changed the passphrase of {gallery.path}")
        elif action == "embeddings-only":
            if args.state == "on":
                deleted = gallery.set_embeddings_only(True)
                print(f"embeddings-only mode is on: {deleted} face thumbnail(s) deleted and wiped")
            elif args.state == "off":
                gallery.set_embeddings_only(False)
                print("embeddings-only mode is off: new enrollments keep a face thumbnail")
            else:
                print(f"embeddings-only mode is {'on' if gallery.embeddings_only else 'off'}")
    return 0


def cmd_bench(args) -> int:
    import tempfile

    from faceapp.embedding.modelcard import yunet_path
    from faceapp.evaluation import speed as benchmark
    from faceapp.recognition.enrollment import samples_from_files
    from faceapp.shared_data import fixtures_dir, reference_sface_onnx
    from faceapp.storage.gallery import Gallery

    with tempfile.TemporaryDirectory() as scratch:
        video = args.video
        fixtures = fixtures_dir()
        if video is None:
            from faceapp.media.fixture_video import make_fixture_video

            if not fixtures.is_dir():
                raise FaceAppError(f"no --video given and the fixture photos are not at {fixtures} (set FACEAPP_FIXTURES)")
            video = make_fixture_video(fixtures, Path(scratch) / "fixtures.avi").path
        frames = benchmark.read_frames(video, args.frames)
        if not frames:
            raise SourceError(f"{video}: no frames")
        with Gallery(Path(scratch) / "bench.sqlite3") as gallery:
            recognizer = _recognizer(args, gallery)
            if fixtures.is_dir():  # a small real gallery, so matching costs what it costs
                for person in ("obama", "biden"):
                    photos = sorted((fixtures / person).glob("*.jpg"))
                    samples = samples_from_files(recognizer, photos)
                    gallery.add_person(person, [s.template(recognizer.embedder.model_id) for s in samples])
            onnx = reference_sface_onnx()
            from faceapp.recognition.tracking import LiveRecognizer

            device = "GPU" if recognizer.embedder.choice.kind == "gpu" else "CPU"
            results = [
                benchmark.bench_faceapp(LiveRecognizer(recognizer).process, frames, name=f"faceapp tracking on ({device})"),
                benchmark.bench_faceapp(recognizer.process, frames, name=f"faceapp tracking off ({device})"),
            ]
            if onnx.is_file():
                reference_gallery = gallery.matrix(recognizer.embedder.model_id).embeddings
                results.append(benchmark.bench_opencv_reference(yunet_path(args.model), onnx, frames, reference_gallery))
            else:
                logger.warning("OpenCV reference pipeline skipped: %s not found (run tools/fetch_reference_model.sh)", onnx)
            if benchmark.face_recognition_available():
                photos = [min((fixtures / p).glob("*.jpg")) for p in ("obama", "biden")] if fixtures.is_dir() else []
                results.append(benchmark.bench_face_recognition(frames, photos))
            else:
                logger.info("face_recognition (dlib) is not installed: its row is skipped (see the README)")
            embedding_rows = []
            if not args.no_embedding:
                crops = []
                for frame in frames:
                    crops += [f.image for f in recognizer.align(frame, recognizer.detect(frame))]
                    if len(crops) >= 8:
                        break
                if crops:
                    embedding_rows = benchmark.bench_embedding(recognizer.card, np.stack(crops[:8]), onnx if onnx.is_file() else None)
    if args.json:
        _print_json({
            "video": str(args.video or "fixture video"),
            "frames": len(frames),
            "frame_size": [frames[0].shape[1], frames[0].shape[0]],
            "pipelines": [r.to_json() for r in results],
            "embedding": [{"runtime": r.name, "batch": r.batch, "ms_per_face": round(r.ms_per_face, 3)} for r in embedding_rows],
        })
        return 0
    print(f"{len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} from {args.video or 'the fixture video'}; "
          "compare ratios between rows, not absolute times")
    print(benchmark.format_pipeline_table(results))
    if embedding_rows:
        print()
        print(benchmark.format_embedding_table(embedding_rows))
    return 0


# --------------------------------------------------------------------------- parser
def _common_options(suppress_defaults: bool) -> argparse.ArgumentParser:
    """Options accepted before or after the command. After it, their defaults are
    suppressed so that a value given before the command is not reset."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")

    def default(value):
        return argparse.SUPPRESS if suppress_defaults else value

    group.add_argument("--gallery", metavar="PATH", default=default(None), help="gallery file (default: $FACEAPP_GALLERY, else the user data directory)")
    group.add_argument("--model", metavar="DIR", default=default(None), help="model directory (default: $FACEAPP_MODELS, else the shipped models/)")
    group.add_argument("--device", choices=("auto", "cpu", "gpu"), default=default("auto"), help="where the embedding CNN runs (default: auto)")
    group.add_argument("--threshold", metavar="T", default=default(None), help="match threshold: a cosine similarity, or a preset: strict, balanced, lenient (default: the model card's)")
    group.add_argument("--det-score", type=fraction, default=default(0.8), metavar="S", help="face detector score threshold (default: 0.8)")
    group.add_argument("--min-face", type=non_negative_int, default=default(20), metavar="PX", help="ignore faces smaller than this many pixels (default: 20)")
    group.add_argument("--flip-fusion", action="store_true", default=default(False),
                       help="embed each face and its mirror image (slightly more accurate, twice the embedding cost)")
    group.add_argument("-v", "--verbose", action="store_true", default=default(False), help="log what happens")
    group.add_argument("-q", "--quiet", action="store_true", default=default(False), help="no progress bars")
    group.add_argument("--passphrase-env", metavar="VAR", default=default(None),
                       help="environment variable holding the passphrase of an encrypted gallery or export "
                       "(default: $FACEAPP_PASSPHRASE, then the OS keyring, then a prompt)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(suppress_defaults=True)

    parser = argparse.ArgumentParser(
        prog="faceapp",
        description="Real-time face recognition: enroll people, then name them in photos, videos and live cameras. "
        "With no command, opens the desktop app.",
        parents=[_common_options(suppress_defaults=False)],
    )
    parser.add_argument("--version", action="version", version=f"faceapp {__version__}")
    parser.add_argument("--source", metavar="SRC", help="with no command: open the desktop app on this source")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    enroll = commands.add_parser("enroll", parents=[common], help="enroll a person from photos (one face per photo)")
    enroll.add_argument("name", help="the person's name")
    enroll.add_argument("images", nargs="+", help="photos showing this person alone")
    enroll.add_argument("--add", action="store_true", help="if NAME is already enrolled, add these photos to them")
    enroll.set_defaults(func=cmd_enroll)

    identify = commands.add_parser("identify", parents=[common], help="name every face in a photo")
    identify.add_argument("image")
    identify.add_argument("--json", action="store_true", help="print machine-readable results")
    identify.add_argument("--out", metavar="FILE", help="also write the photo with boxes and names")
    identify.set_defaults(func=cmd_identify)

    verify = commands.add_parser("verify", parents=[common], help="are two photos the same person? (largest face of each)")
    verify.add_argument("first")
    verify.add_argument("second")
    verify.add_argument("--json", action="store_true", help="print machine-readable results")
    verify.set_defaults(func=cmd_verify)

    recognize = commands.add_parser("recognize", parents=[common], help="recognise faces frame by frame in a video, stream, webcam or image folder")
    recognize.add_argument("--source", required=True, metavar="SRC", help="webcam index, video file, stream URL or image folder")
    recognize.add_argument("--out", metavar="FILE.mp4", help="write the annotated video")
    recognize.add_argument("--events", metavar="FILE.jsonl", help="write one JSON line per face per frame")
    recognize.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames (needed to end a live source other than by Ctrl+C)")
    recognize.add_argument("--no-tracking", action="store_true",
                           help="recognise every face of every frame on its own (default: track faces, vote names, embed only when needed)")
    recognize.add_argument("--blur", choices=("none", "unknown", "all"), default="none",
                           help="blur faces in the --out video: those not enrolled, or all (default: none)")
    recognize.set_defaults(func=cmd_recognize)

    bench = commands.add_parser(
        "bench", parents=[common],
        help="measure speed against OpenCV's own YuNet + SFace pipeline (and face_recognition, if installed), in one run",
    )
    bench.add_argument("--video", metavar="FILE", help="video to process (default: one made from the fixture photos, 640x480)")
    bench.add_argument("--frames", type=positive_int, metavar="N", help="use at most N frames")
    bench.add_argument("--no-embedding", action="store_true", help="skip the embedding-only comparison")
    bench.add_argument("--json", action="store_true", help="print one object per pipeline (name, fps, per-stage ms)")
    bench.set_defaults(func=cmd_bench)

    from faceapp.cli.train import register as register_train
    from faceapp.cli.train import register_reembed

    register_train(commands, common)

    from faceapp.cli.evaluate import register as register_eval

    register_eval(commands, common)

    gallery = commands.add_parser("gallery", parents=[common], help="list and manage enrolled people")
    actions = gallery.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[common], help="list people")
    listing.add_argument("--json", action="store_true", help="print machine-readable results")
    rename = actions.add_parser("rename", parents=[common], help="rename a person")
    rename.add_argument("old")
    rename.add_argument("new")
    merge = actions.add_parser("merge", parents=[common], help="move FROM's templates into INTO and remove FROM")
    merge.add_argument("source", metavar="FROM")
    merge.add_argument("target", metavar="INTO")
    remove = actions.add_parser("remove", parents=[common], help="remove a person and all their templates")
    remove.add_argument("name")
    export = actions.add_parser("export", parents=[common], help="write the whole gallery to a zip file")
    export.add_argument("file", metavar="FILE.zip")
    export.add_argument("--encrypt", action="store_true", help="encrypt the file with a passphrase (asked, or --new-passphrase-env)")
    export.add_argument("--new-passphrase-env", metavar="VAR", help="environment variable holding the export's passphrase")
    importing = actions.add_parser("import", parents=[common], help="add the people of an exported zip file")
    importing.add_argument("file", metavar="FILE.zip")
    importing.add_argument("--on-conflict", choices=("error", "merge", "skip"), default="error",
                           help="when a name exists already: stop (default), merge the templates, or skip that person")
    encrypt = actions.add_parser("encrypt", parents=[common], help="encrypt the stored faces with a passphrase")
    encrypt.add_argument("--new-passphrase-env", metavar="VAR", help="environment variable holding the new passphrase")
    actions.add_parser("decrypt", parents=[common], help="store the faces unencrypted again")
    passwd = actions.add_parser("passwd", parents=[common], help="change the passphrase (re-encrypts everything in one step)")
    passwd.add_argument("--new-passphrase-env", metavar="VAR", help="environment variable holding the new passphrase")
    only = actions.add_parser("embeddings-only", parents=[common], help="store no face images at all (deletes thumbnails)")
    only.add_argument("state", nargs="?", choices=("on", "off"), help="omit to show the current mode")
    register_reembed(actions, common)
    gallery.set_defaults(func=cmd_gallery)
    return parser


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("ORT_LOG_LEVEL", "3")


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if args.command is None:
        from faceapp.cli.app import launch_gui

        return launch_gui(args)
    try:
        return args.func(args)
    except FaceAppError as error:
        print(f"faceapp: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("faceapp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
