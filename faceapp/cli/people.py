"""``faceapp enroll``, ``faceapp identify`` and ``faceapp verify``."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from faceapp.cli.argtypes import fraction, positive_float
from faceapp.cli.common import (
    build_recognizer,
    gallery_path,
    no_trace_on_failure,
    open_gallery,
    print_json,
    protected_files,
    show_progress,
)
from faceapp.errors import FaceAppError, NoFaceError
from faceapp.files import check_output_path

logger = logging.getLogger(__name__)


def cmd_enroll(args: argparse.Namespace) -> int:
    from faceapp.recognition.enrollment import likely_person, samples_from_files, stack_embeddings
    from faceapp.storage.gallery import normalize_name

    name = normalize_name(args.name)  # a bad name is refused before any model loads
    with no_trace_on_failure(gallery_path(args)), open_gallery(args, create=True) as gallery:
        recognizer = build_recognizer(args, gallery)
        samples = samples_from_files(recognizer, args.images, progress=show_progress(args))
        similar = likely_person(recognizer.matcher(), stack_embeddings(samples))
        if similar is not None and similar != name and not args.force:
            raise FaceAppError(
                f"the face in these photos is already enrolled as '{similar}': add them to them with "
                f"`faceapp enroll '{similar}' --add ...`, or pass --force to enroll them as '{name}' anyway; nothing was changed"
            )
        templates = [s.template(recognizer.embedder.model_id) for s in samples]
        existing = {p.name for p in gallery.people()}
        if name in existing:
            if not args.add:
                raise FaceAppError(f"'{name}' is already enrolled: pass --add to add these photos to them")
            person = gallery.add_templates(name, templates)
            print(f"added {len(templates)} template(s) to '{person.name}' (now {person.template_count})")
        else:
            person = gallery.add_person(name, templates)
            print(f"enrolled '{person.name}' with {person.template_count} template(s) in {gallery.path}")
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    from faceapp.media.imageio import read_image, write_image
    from faceapp.media.overlay import draw_results
    from faceapp.media.privacy import PrivacyPolicy, check_image_write

    if args.out is not None:
        check_output_path(args.out, protected_files(args, ("the input photo", args.image)), "image")
    with open_gallery(args, read_only=True) as gallery:
        if args.out is not None:  # no face image is written from an embeddings-only gallery
            check_image_write(PrivacyPolicy.for_gallery(gallery, "none"), f"the image {args.out}")
        recognizer = build_recognizer(args, gallery)
        image = read_image(args.image)
        result = recognizer.process(image)
        threshold = recognizer.threshold  # the gallery's, as the decision rule chose it
    if args.out is not None:
        write_image(args.out, draw_results(image, result))
    if args.json:
        print_json({"image": str(args.image), "decision": recognizer.decision.label, "threshold": threshold, "faces": [f.to_json() for f in result.faces]})
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


def _largest_face_embedding(recognizer: Any, path: str):
    """The embedding of the largest face in the photo ``path`` (NoFaceError if none)."""
    from faceapp.media.imageio import read_image

    image = read_image(path)
    detections = recognizer.detect(image)
    if not detections:
        raise NoFaceError(f"{path}: no face found")
    if len(detections) > 1:
        logger.warning("%s: %d faces found; using the largest", path, len(detections))
    detection = max(detections, key=lambda d: d.area)
    return recognizer.embed(recognizer.align(image, [detection]))[0]


def cmd_verify(args: argparse.Namespace) -> int:
    if args.live:
        return _verify_live(args)
    if args.source is not None or args.person is not None:
        raise FaceAppError("--source and --person go with --live (verify the person in front of the camera)")
    if args.second is None:
        raise FaceAppError("verify needs two photos (or --live --source SRC with one photo or --person NAME)")
    recognizer = build_recognizer(args)
    first = _largest_face_embedding(recognizer, args.first)
    second = _largest_face_embedding(recognizer, args.second)
    similarity = float(first @ second)
    threshold = recognizer.verification_threshold
    same = similarity >= threshold
    if args.json:
        print_json({"same_person": same, "similarity": round(similarity, 4), "threshold": threshold})
    else:
        verdict = "same person" if same else "different people"
        print(f"{verdict}: similarity {similarity:.3f} (threshold {threshold:.3f})")
    return 0


def _verify_live(args: argparse.Namespace) -> int:
    """``verify --live``: the passive check and the head-turn challenge on a camera or video."""
    import sys
    from pathlib import Path

    from faceapp.media.reader import Reader
    from faceapp.media.sources import IMAGE_SUFFIXES, SourceSpec, open_source
    from faceapp.recognition.challenge import ChallengeConfig, HeadTurnChallenge
    from faceapp.recognition.live_verify import verify_live
    from faceapp.storage.locations import describe
    from faceapp.vision.liveness import LivenessChecker

    if args.source is None:
        raise FaceAppError("--live needs --source (a camera index such as 0, a video file or a stream URL)")
    if args.second is not None or (args.first is None) == (args.person is None):
        raise FaceAppError("--live compares the camera's face with one photo or with --person NAME (one of them)")
    try:
        config = ChallengeConfig(time_limit_s=args.time_limit)
        config.validate()
    except ValueError as error:
        raise FaceAppError(str(error)) from None
    spec = SourceSpec.parse(args.source)
    if spec.kind == "folder" or (spec.kind == "file" and Path(spec.value).suffix.lower() in IMAGE_SUFFIXES):
        raise FaceAppError(f"{args.source}: a photo cannot turn its head; give a camera or a video")
    import contextlib

    with open_gallery(args, read_only=True) if args.person is not None else contextlib.nullcontext() as gallery:
        recognizer = build_recognizer(args, gallery)
        reference = None
        if args.person is not None:
            if args.person not in {p.name for p in gallery.people()}:
                raise FaceAppError(f"'{args.person}' is not enrolled in the gallery {describe(gallery_path(args))}")
        else:
            reference = _largest_face_embedding(recognizer, args.first)
        checker = LivenessChecker(args.model, threshold=args.liveness_threshold, device=args.device)
        reader = Reader(lambda: open_source(spec), description=str(spec), live=spec.is_live, raise_errors=True)
        try:
            order = None if args.challenge_order == "random" else tuple(args.challenge_order.split("-"))
            verdict = verify_live(recognizer, reader.frames(), checker, HeadTurnChallenge(config, order=order), reference=reference,
                                  person=args.person, on_prompt=lambda text: print(f"> {text}", file=sys.stderr, flush=True))
        finally:
            reader.stop()
    if args.json:
        print_json(verdict.to_json())
    else:
        print(verdict.verdict)
    return 0 if verdict.live and verdict.same else 3


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``enroll``, ``identify`` and ``verify`` to the CLI's subparsers."""
    enroll = commands.add_parser("enroll", parents=[common], help="enroll a person from photos (one face per photo)")
    enroll.add_argument("name", help="the person's name")
    enroll.add_argument("images", nargs="+", help="photos showing this person alone")
    enroll.add_argument("--add", action="store_true", help="if NAME is already enrolled, add these photos to them")
    enroll.add_argument("--force", action="store_true",
                        help="enroll even when the face already matches another enrolled person")
    enroll.set_defaults(func=cmd_enroll)

    identify = commands.add_parser("identify", parents=[common], help="name every face in a photo")
    identify.add_argument("image")
    identify.add_argument("--json", action="store_true", help="print machine-readable results")
    identify.add_argument("--out", metavar="FILE", help="also write the photo with boxes and names")
    identify.set_defaults(func=cmd_identify)

    verify = commands.add_parser(
        "verify", parents=[common], help="are two photos the same person? (largest face of each); with --live, "
        "is the person in front of the camera live and the same as a photo or an enrolled person?",
        description="Two photos: the similarity of their largest faces against the verification threshold. "
        "--live --source SRC PHOTO (or --person NAME): asks the person to turn their head left and right (random "
        "order) and checks from the 5 landmarks that they do, within --time-limit; scores every frame with the "
        "passive anti-spoofing networks (MiniFASNet); and compares the frontal views with the photo or the enrolled "
        "person. Answers 'same person, live' (exit status 0) or says why not (exit status 3).")
    verify.add_argument("first", nargs="?", help="a photo (with --live: the expected person's photo)")
    verify.add_argument("second", nargs="?", help="the second photo (not with --live)")
    verify.add_argument("--live", action="store_true", help="verify the live person in front of --source")
    verify.add_argument("--source", metavar="SRC", help="with --live: camera index (0), video file or stream URL")
    verify.add_argument("--person", metavar="NAME", help="with --live: the enrolled person expected (instead of a photo)")
    verify.add_argument("--time-limit", type=positive_float, default=10.0, metavar="S",
                        help="with --live: seconds to complete the head turns, from the first frontal view (default: 10)")
    verify.add_argument("--challenge-order", choices=("random", "left-right", "right-left"), default="random",
                        help="with --live: the order of the head turns asked (default: random; a fixed order is for "
                        "demonstrations and tests only: a recorded video can follow it)")
    verify.add_argument("--liveness-threshold", type=fraction, default=0.5, metavar="P",
                        help="with --live: the passive check's threshold on P(real) (default: 0.5)")
    verify.add_argument("--json", action="store_true", help="print machine-readable results")
    verify.set_defaults(func=cmd_verify)
