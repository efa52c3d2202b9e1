"""``faceapp enroll``, ``faceapp identify`` and ``faceapp verify``."""

from __future__ import annotations

import argparse
import logging
from typing import Any

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

    verify = commands.add_parser("verify", parents=[common], help="are two photos the same person? (largest face of each)")
    verify.add_argument("first")
    verify.add_argument("second")
    verify.add_argument("--json", action="store_true", help="print machine-readable results")
    verify.set_defaults(func=cmd_verify)
