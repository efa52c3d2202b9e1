"""``faceapp gallery not | threshold | calibrate``: the open-set decision of a gallery.

* ``not NAME PHOTO...`` stores faces that are *not* NAME (a look-alike the app named
  wrongly): a face nearer to them than to NAME's own templates is not given the name.
* ``threshold NAME VALUE|auto`` gives NAME their own threshold, or back the automatic one.
* ``calibrate`` shows what the decision rule chose for this gallery (see
  :mod:`faceapp.recognition.decision`).
"""

from __future__ import annotations

import argparse
import logging
import math
from typing import Any

import numpy as np

from faceapp.cli.common import build_recognizer, open_gallery, print_json, show_progress
from faceapp.errors import FaceAppError

logger = logging.getLogger(__name__)


def _not(args, gallery) -> None:
    from faceapp.recognition.decision import looks_like_them, same_person_level
    from faceapp.recognition.enrollment import samples_from_files, stack_embeddings

    name = gallery.person(args.name).name  # an unknown name is refused before the model loads
    recognizer = build_recognizer(args, gallery)
    quiet = logging.getLogger("faceapp.recognition.enrollment")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # a look-alike's photo need not be an enrollment photo: no quality warnings
    try:
        samples = samples_from_files(recognizer, args.images, progress=show_progress(args))
    finally:
        quiet.setLevel(level)
    faces = stack_embeddings(samples)
    data = gallery.matrix(recognizer.embedder.model_id)
    own = data.embeddings[data.person_index == data.names.index(name)] if name in data.names else faces[:0]
    level_same = same_person_level(recognizer.calibration, recognizer.card.threshold_presets)
    for sample, face in zip(samples, faces):
        why = looks_like_them(own, face[None], level_same)
        if why and not args.force:
            raise FaceAppError(f"{sample.source}: this face looks like '{name}' themselves ({why}); check the photo, "
                               "or pass --force to store it anyway; nothing was changed")
    person = gallery.add_negatives(name, [s.template(recognizer.embedder.model_id) for s in samples])
    print(f"stored {len(samples)} face(s) as not '{person.name}' (now {person.negative_count}); "
          f"a face nearer to them than to '{person.name}' is not given the name")


def _threshold(args, gallery) -> None:
    value = args.value.strip().lower()
    if value == "auto":
        person = gallery.set_threshold(args.name, None)
        print(f"'{person.name}' has the automatic threshold again")
        return
    try:
        number = float(value) + 0.0  # -0 is 0
    except ValueError:
        raise FaceAppError(f"a threshold is a cosine similarity between -1 and 1, or 'auto', not {args.value!r}") from None
    if not math.isfinite(number) or not -1.0 <= number <= 1.0:
        raise FaceAppError(f"a threshold is a cosine similarity between -1 and 1, not {args.value!r}")
    person = gallery.set_threshold(args.name, number)
    print(f"'{person.name}' is named only at a similarity of {number:.3f} or more (back to automatic: "
          f"`faceapp gallery threshold '{person.name}' auto`)")


def calibration_report(recognizer: Any, data: Any) -> dict[str, Any]:
    """What the decision chose for the gallery matrix ``data``, and what each preset
    would choose, as JSON-ready data."""
    chosen = recognizer.calibrate(data)
    names = tuple(data.names) if data is not None else ()
    negatives = np.bincount(data.negative_index, minlength=len(names)) if data is not None and data.negative_index is not None \
        else np.zeros(len(names), np.int64)

    def number(value) -> float | None:
        return None if value is None or not math.isfinite(float(value)) else round(float(value), 4)

    presets = {}
    for preset in recognizer.card.threshold_presets:
        other = chosen if chosen.rule.preset == preset else recognizer.calibrate(data, preset)
        presets[preset] = {"target": other.target, "gallery_threshold": number(other.gallery_threshold),
                           "expected_false_alarms": number(other.expected_false_alarms)}
    calibration = recognizer.calibration
    return {
        "model_id": recognizer.card.model_id,
        "calibrated_model": calibration is not None,
        "decision": chosen.rule.label,
        "target": chosen.target,
        "people": len(names),
        "templates": int(chosen.templates.sum()),
        "gallery_threshold": number(chosen.gallery_threshold),
        "expected_false_alarms": number(chosen.expected_false_alarms),
        "presets": presets,
        "persons": [
            {"name": name, "templates": int(chosen.templates[i]), "negatives": int(negatives[i]),
             "look_alike_score": number(chosen.cohort[i]), "automatic": number(chosen.automatic[i]),
             "own_threshold": number(chosen.overrides[i]), "threshold": number(chosen.thresholds[i])}
            for i, name in enumerate(names)
        ],
    }


def format_calibration(report: dict[str, Any]) -> str:
    """The report of :func:`calibration_report` as text for a terminal."""
    lines = []
    if report["target"] is not None:
        lines.append(f"decision: {report['decision']}: a target of {report['target']:.1%} of strangers' faces named, "
                     f"for this gallery of {report['people']} people ({report['templates']} templates)")
    else:
        lines.append(f"decision: {report['decision']} for everyone without an own threshold ({report['people']} people, "
                     f"{report['templates']} templates)")
    if not report["calibrated_model"]:
        lines.append(f"the model {report['model_id']} has no open-set calibration: presets are its fixed thresholds")
    lines.append(f"gallery threshold: {report['gallery_threshold']:.3f}")
    if report["expected_false_alarms"] is not None:
        lines.append(f"expected share of strangers' faces named: {report['expected_false_alarms']:.2%} "
                     "(from the impostor scores measured on LFW)")
    lines.append("presets for this gallery: " + ", ".join(
        f"{name} {p['gallery_threshold']:.3f}" + (f" (target {p['target']:.1%})" if p["target"] is not None else "")
        for name, p in report["presets"].items()))
    if report["persons"]:
        width = max(8, *(len(p["name"]) for p in report["persons"]))
        lines.append(f"{'person':<{width}}  templates  not-them  look-alike  automatic  own    used")
        for p in report["persons"]:
            look = "-" if p["look_alike_score"] is None else f"{p['look_alike_score']:.3f}"
            own = "-" if p["own_threshold"] is None else f"{p['own_threshold']:.3f}"
            lines.append(f"{p['name']:<{width}}  {p['templates']:>9}  {p['negatives']:>8}  {look:>10}  "
                         f"{p['automatic']:>9.3f}  {own:>5}  {p['threshold']:.3f}")
        lines.append("look-alike: how much a person's faces resemble other enrolled people (higher: a stricter threshold)")
    return "\n".join(lines)


def _calibrate(args, gallery) -> None:
    recognizer = build_recognizer(args, gallery)
    data = gallery.matrix(recognizer.embedder.model_id)
    report = calibration_report(recognizer, data)
    if args.json:
        print_json(report)
    else:
        print(format_calibration(report))


ACTIONS = {"not": _not, "threshold": _threshold, "calibrate": _calibrate}
READING = ("calibrate",)


def cmd_decision(args: argparse.Namespace) -> int:
    with open_gallery(args, read_only=args.gallery_command in READING) as gallery:
        ACTIONS[args.gallery_command](args, gallery)
    return 0


def register(actions: Any, common: argparse.ArgumentParser) -> None:
    """Add ``not``, ``threshold`` and ``calibrate`` to ``faceapp gallery``'s actions."""
    negative = actions.add_parser(
        "not", parents=[common], help="store photos of someone who is NOT this person (a look-alike named wrongly)",
        description="Store the face of each photo (one face per photo) as 'not NAME': a face nearer to these "
        "than to NAME's own templates is not given the name. Refused when the faces look like NAME themselves "
        "(they would stop naming NAME's own enrolment photos) unless --force.",
    )
    negative.add_argument("name", metavar="NAME")
    negative.add_argument("images", nargs="+", metavar="PHOTO")
    negative.add_argument("--force", action="store_true", help="store them even if they look like NAME themselves")
    threshold = actions.add_parser(
        "threshold", parents=[common], help="give a person their own threshold (VALUE), or the automatic one (auto)",
        description="NAME is named only when a face's similarity to their templates reaches VALUE (a cosine "
        "similarity between -1 and 1), whatever the decision rule; 'auto' goes back to the calibrated threshold.",
    )
    threshold.add_argument("name", metavar="NAME")
    threshold.add_argument("value", metavar="VALUE|auto")
    calibrate = actions.add_parser(
        "calibrate", parents=[common], help="show the thresholds the decision rule chooses for this gallery",
        description="Recompute the open-set decision for this gallery and show it: the gallery threshold that "
        "meets the preset's false-alarm target for its number of people and templates, each person's threshold "
        "(stricter for people who resemble others) and own override. --threshold chooses the rule.",
    )
    calibrate.add_argument("--json", action="store_true", help="print machine-readable results")
