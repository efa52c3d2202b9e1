"""The ``faceapp eval`` commands: ``eval lfw``, ``eval robustness``, ``eval ident`` and ``eval unknowns``.

:func:`register` adds them to the CLI's subcommands; each action's ``func(args)``
returns the exit status. User errors raise :class:`~faceapp.errors.FaceAppError`.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from faceapp.cli.argtypes import fold_count, fraction, positive_int, seed
from faceapp.cli.common import build_recognizer, check_output_folder, print_report, show_progress
from faceapp.errors import ConfigError

logger = logging.getLogger(__name__)

LFW_DESCRIPTION = """\
Run the whole pipeline (detection, alignment, embedding) on the images that an LFW
pairs.txt names and report the k-fold verification result (mean accuracy and standard
deviation, each fold's threshold chosen on the other folds), ROC AUC, equal error rate,
TAR at FAR 1e-2 and 1e-3 and the best single threshold, for plain embeddings and for
flip fusion (embedding of the face + that of its mirror image). Writes report.json,
roc.png and pair_scores.csv to --out and prints a table (or the report with --json).

DATA_DIR holds pairs.txt and images/NAME_NNNN.jpg (default: $FACEAPP_LFW_DIR, else
<repo>/../shared/data/lfw). Faces: YuNet on the image at each of --scales (1x and 2x:
LFW's 150x150 crops are small), the subject's landmarks averaged over the scales; of
several faces the one nearest the image centre is the subject. An image with no
detected face is aligned with fixed landmarks at LFW's average face position
(--no-face centre) or its pairs are declared "different" (--no-face reject); either
way such images are counted and named in the report.
The threshold presets proposed: strict = the threshold of FAR 1e-3, balanced = the best
accuracy threshold, lenient = the threshold of FAR 1e-2."""

ROBUSTNESS_DESCRIPTION = """\
LFW's k-fold verification protocol (as eval lfw) on the clean images, then again with
the second image of every pair degraded, for each condition at each severity (1 mild
.. 3 severe): low_light (gamma darkening, shot and read noise), motion_blur (a line,
random angle), defocus_blur (a disc), jpeg (quality 30, 20, 10), small_face (the image
shrunk so the face is 40, 32, 24 px wide), eye_band (a black band over the eyes) and
mask (the lower face covered). Reports, per row, the k-fold accuracy ± std, TAR at FAR
1e-3, the accuracy at the clean run's thresholds and the images where no face was
found; then the clean pairs binned by the difference of the two faces' yaw (estimated
from the 5 landmarks); then face quality: over every pair scored, how fast the errors
fall when the pairs whose poorer view scores lowest are discarded, for the detector's
confidence (what the live loop weighs views by) and other candidate scores, and the
pairs a minimum confidence leaves unjudged. When OpenCV Zoo's SFace ONNX file is present
($FACEAPP_SFACE_ONNX, or tools/fetch_reference_model.sh), OpenCV's own YuNet + SFace
pipeline runs on the very same degraded images, side by side. Degradations are seeded
(--seed) per image: reruns are identical. Writes report.json, robustness.png,
pair_scores.csv and quality_pairs.npz (every pair's view measurements) to --out and
prints the tables (or the report with --json). The full
run (6000 pairs, 21 degraded sets, with the reference) takes about an hour on 2 cores:
--pairs N measures a subset, even over folds and same/different pairs."""

IDENT_DESCRIPTION = """\
Open-set identification on a dataset of people: one folder per person (DATA_DIR/NAME/
*.jpg) or flat NAME_NNNN.jpg files (LFW's layout; DATA_DIR/images/ if present), grouped
by name. Strangers (--strangers, chosen at random with --seed) are never enrolled: all
their images are unknown probes. Every other person with more than K images (--enroll)
is known: their first K images (file-name order) are enrolled, the rest are probes;
people with fewer images are left out. Reports closed-set rank-1 accuracy, the
detection-and-identification rate (DIR) at false alarm rates 1% and 0.1%, and at the
app's actual decision (--threshold: a preset, calibrated for each split's gallery as the
app does, or a fixed number; default balanced) the share of strangers' photos named,
DIR, and precision, recall and F1 of "named"; the same for every preset and for the
fixed threshold the app used before. --folds N: k-fold cross-validation, each of N
groups of people being the strangers once (mean and std reported). --gallery-sizes
10,100,1000: the same figures for galleries of that many people drawn from the dataset,
everyone else being a stranger (more people need more images: use --enroll 1 for 1000
people of the shared LFW set)."""


def _scales(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected factors separated by commas, e.g. 1,2; got {text!r}") from None
    if not values or not all(1.0 <= value <= 8.0 for value in values):
        raise argparse.ArgumentTypeError(f"expected one or more factors in [1, 8], got {text!r}")
    return values


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers of people separated by commas, e.g. 10,100,1000; got {text!r}") from None
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError(f"expected one or more gallery sizes of 2 people or more, got {text!r}")
    return tuple(sorted(set(values)))


def _strangers(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction or a count, got {text!r}") from None
    if not value > 0 or (value >= 1 and value != int(value)):
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1) or a whole count >= 1, got {text}")
    return value


def cmd_eval_lfw(args: argparse.Namespace) -> int:
    """``faceapp eval lfw``."""
    from faceapp.evaluation.lfw import load_lfw, run_lfw
    from faceapp.evaluation.report import format_lfw_table
    from faceapp.vision.faces import FacePolicy

    if args.flip_fusion and not args.flip:
        raise ConfigError("--flip-fusion and --no-flip contradict each other (eval lfw reports flip fusion unless --no-flip)")
    dataset = load_lfw(args.data_dir, args.pairs)  # check the data before loading the models
    recognizer = build_recognizer(args)
    report = run_lfw(
        recognizer,
        dataset,
        out_dir=check_output_folder(args.out, "report"),
        policy=FacePolicy(scales=args.scales, pick="centre", no_face=args.no_face),
        flip=args.flip,
        batch_size=args.batch_size,
        progress=show_progress(args),
    )
    print_report(args, report, format_lfw_table(report))
    return 0


def _names(choices: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
        unknown = [v for v in values if v not in choices]
        if not values or unknown:
            raise argparse.ArgumentTypeError(f"expected some of {','.join(choices)} separated by commas, got {text!r}")
        return values

    return parse


def _severities(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected severities 1, 2 and/or 3 separated by commas, got {text!r}") from None
    if not values or not set(values) <= {1, 2, 3}:
        raise argparse.ArgumentTypeError(f"expected severities 1, 2 and/or 3 separated by commas, got {text!r}")
    return values


def cmd_eval_robustness(args: argparse.Namespace) -> int:
    """``faceapp eval robustness``."""
    import sys

    from faceapp.evaluation.lfw import load_lfw
    from faceapp.evaluation.robustness import RobustnessConfig, run_robustness
    from faceapp.evaluation.robustness_report import format_robustness_table
    from faceapp.paths import reference_sface_onnx
    from faceapp.vision.faces import FacePolicy

    dataset = load_lfw(args.data_dir, args.pairs_file)  # check the data before loading the models
    out = check_output_folder(args.out, "report")
    recognizer = build_recognizer(args)
    policy = FacePolicy(scales=args.scales, pick="centre", no_face=args.no_face)
    reference = None
    onnx = reference_sface_onnx()
    if args.reference and onnx.is_file():
        from faceapp.evaluation.robustness_embed import OpenCVReference
        from faceapp.vision.detection import yunet_path

        reference = OpenCVReference(yunet_path(args.model), onnx, policy, score_threshold=args.det_score)
    elif args.reference:
        print(f"faceapp: note: the OpenCV reference columns are left out: {onnx} is missing "
              "(bash tools/fetch_reference_model.sh fetches it, or set FACEAPP_SFACE_ONNX)", file=sys.stderr)
    config = RobustnessConfig(conditions=args.conditions, severities=args.severities, pairs=args.pairs, seed=args.seed,
                              batch_size=args.batch_size)
    report = run_robustness(recognizer, dataset, config, policy=policy, reference=reference, out_dir=out,
                            progress=show_progress(args))
    print_report(args, report, format_robustness_table(report))
    return 0


def cmd_eval_ident(args: argparse.Namespace) -> int:
    """``faceapp eval ident``."""
    from faceapp.evaluation.ident import IdentConfig, discover_people, format_ident_table, run_ident
    from faceapp.evaluation.images import DatasetError
    from faceapp.vision.faces import FacePolicy

    config = IdentConfig(enroll=args.enroll, strangers=args.strangers, folds=args.folds, seed=args.seed)
    try:
        config.validate()
    except ValueError as error:
        raise DatasetError(str(error)) from None
    people = discover_people(args.data_dir)  # check the data before loading the models
    recognizer = build_recognizer(args)
    report = run_ident(
        recognizer,
        args.data_dir,
        config,
        people=people,
        policy=FacePolicy(scales=args.scales, pick=args.pick, no_face=args.no_face),
        flip=args.flip or args.flip_fusion,
        out_dir=check_output_folder(args.out, "report"),
        batch_size=args.batch_size,
        progress=show_progress(args),
        gallery_sizes=args.gallery_sizes,
    )
    print_report(args, report, format_ident_table(report))
    return 0


def cmd_eval_unknowns(args: argparse.Namespace) -> int:
    """``faceapp eval unknowns``."""
    from faceapp.evaluation.clustering import format_unknowns, run_unknowns
    from faceapp.recognition.visitors import VisitorConfig

    recognizer = build_recognizer(args)
    config = VisitorConfig.from_card(recognizer.card.visitors)
    config = VisitorConfig(args.join if args.join is not None else config.join,
                           args.min_faces if args.min_faces is not None else config.min_faces)
    report = run_unknowns(recognizer, args.data_dir, min_photos=args.min_photos, config=config, seed=args.seed,
                          progress=show_progress(args))
    print_report(args, report, format_unknowns(report))
    return 0


def _lfw_protocol_options(parser: argparse.ArgumentParser, pairs_option: str, plot: str, out: str) -> None:
    """The options every LFW-protocol evaluation takes (``eval lfw``, ``eval robustness``)."""
    parser.add_argument("data_dir", nargs="?", metavar="DATA_DIR", help="LFW folder with pairs.txt and images/ (default: $FACEAPP_LFW_DIR, else ../shared/data/lfw)")
    parser.add_argument(pairs_option, dest=pairs_option.lstrip("-").replace("-", "_"), metavar="FILE",
                        help="pairs file (default: DATA_DIR/pairs.txt)")
    parser.add_argument("--out", metavar="DIR", default=out, help=f"where report.json, {plot} and pair_scores.csv go (default: ./{out})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--scales", type=_scales, default=(1.0, 2.0), metavar="S[,S...]",
                        help="detect at these image scales and average the subject's landmarks (default: 1,2)")
    parser.add_argument("--no-face", choices=("centre", "reject"), default="centre",
                        help="an image with no detected face: align it at LFW's mean face position (default) or declare its pairs different")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="faces per embedding batch (default: 64)")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``eval`` (actions ``lfw``, ``robustness``, ``ident`` and ``unknowns``) to the CLI's subparsers ``commands``;
    every parser takes ``parents=[common]``."""
    evaluate = commands.add_parser("eval", parents=[common], help="measure accuracy: LFW verification, identification, clustering of unknown faces")
    actions = evaluate.add_subparsers(dest="eval_command", metavar="ACTION", required=True)
    formatter = argparse.RawDescriptionHelpFormatter

    lfw = actions.add_parser(
        "lfw", parents=[common], help="LFW 10-fold verification through the whole pipeline",
        description=LFW_DESCRIPTION, formatter_class=formatter,
    )
    _lfw_protocol_options(lfw, "--pairs", "roc.png", "eval-lfw")
    lfw.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                     help="also evaluate flip fusion, reported separately (default: on; --no-flip halves the time)")
    lfw.set_defaults(func=cmd_eval_lfw)

    from faceapp.evaluation.degrade import CONDITIONS  # numpy only: cheap

    robustness = actions.add_parser(
        "robustness", parents=[common], help="LFW verification with one image of every pair degraded (light, blur, JPEG, size, occlusion), and by head pose",
        description=ROBUSTNESS_DESCRIPTION, formatter_class=formatter,
    )
    _lfw_protocol_options(robustness, "--pairs-file", "robustness.png", "eval-robustness")
    robustness.add_argument("--pairs", type=positive_int, metavar="N", help="measure N pairs only, spread evenly over folds and same/different pairs (default: all)")
    robustness.add_argument("--conditions", type=_names(tuple(CONDITIONS)), default=tuple(CONDITIONS), metavar="C[,C...]",
                            help=f"conditions to run (default: all: {','.join(CONDITIONS)})")
    robustness.add_argument("--severities", type=_severities, default=(1, 2, 3), metavar="S[,S...]", help="severities to run, of 1,2,3 (default: all)")
    robustness.add_argument("--seed", type=seed, default=0, help="seed of the pair subset and of every degradation (default: 0)")
    robustness.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                            help="also run OpenCV's YuNet + SFace on the same images when its ONNX file is present (default: on)")
    robustness.set_defaults(func=cmd_eval_robustness)

    ident = actions.add_parser(
        "ident", parents=[common], help="open-set identification on a folder-per-person (or LFW-like) dataset",
        description=IDENT_DESCRIPTION, formatter_class=formatter,
    )
    ident.add_argument("data_dir", metavar="DATA_DIR", help="NAME/*.jpg folders, or NAME_NNNN.jpg files (in DATA_DIR or DATA_DIR/images)")
    ident.add_argument("--enroll", "-k", type=positive_int, default=2, metavar="K",
                       help="images enrolled per known person; people need K+1 images to be known (default: 2)")
    ident.add_argument("--strangers", "-m", type=_strangers, default=0.2, metavar="M",
                       help="people never enrolled: a fraction of all people if < 1, else a count (default: 0.2)")
    ident.add_argument("--folds", type=fold_count, metavar="N",
                       help="k-fold cross-validation: N groups of people, each the strangers once (overrides --strangers)")
    ident.add_argument("--seed", type=seed, default=0, help="seed of the random choice of strangers (default: 0)")
    ident.add_argument("--out", metavar="DIR", default="eval-ident", help="where report.json goes (default: ./eval-ident)")
    ident.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    ident.add_argument("--flip", action=argparse.BooleanOptionalAction, default=False, help="use flip-fused embeddings (default: off; --flip-fusion too)")
    ident.add_argument("--scales", type=_scales, default=(1.0, 2.0), metavar="S[,S...]",
                       help="detect at these image scales and average the subject's landmarks (default: 1,2; use 1 for large photos)")
    ident.add_argument("--pick", choices=("centre", "largest"), default="centre",
                       help="of several faces in an image, the subject is the one nearest the centre (default) or the largest")
    ident.add_argument("--no-face", choices=("skip", "centre"), default="skip",
                       help="an image with no detected face is left out (default) or aligned at LFW's mean face position")
    ident.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="faces per embedding batch (default: 64)")
    ident.add_argument("--gallery-sizes", type=_sizes, default=(), metavar="N[,N...]",
                       help="also measure galleries of N people drawn from the dataset (K images enrolled each, "
                       "everyone else a stranger), e.g. 10,100,1000: strangers named and DIR for each decision rule")
    ident.set_defaults(func=cmd_eval_ident)
    unknowns = actions.add_parser(
        "unknowns", parents=[common], help="how well unknown faces are clustered into visitors (BCubed)",
        description="Cluster the photos of every person with --min-photos or more (in a random order, as unknown "
        "faces arriving one by one) with the live rule and with DBSCAN, and report BCubed precision, recall and F "
        "and the number of clusters against the number of people.",
    )
    unknowns.add_argument("data_dir", metavar="DATA_DIR", help="NAME/*.jpg folders, or NAME_NNNN.jpg files (in DATA_DIR or DATA_DIR/images)")
    unknowns.add_argument("--min-photos", type=positive_int, default=4, metavar="N", help="people with at least N photos (default: 4)")
    unknowns.add_argument("--join", type=fraction, metavar="S", help="similarity to join a visitor (default: the model card's)")
    unknowns.add_argument("--min-faces", type=positive_int, metavar="N", help="close faces a new visitor needs (default: the model card's)")
    unknowns.add_argument("--seed", type=seed, default=0, help="seed of the order the faces arrive in (default: 0)")
    unknowns.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    unknowns.set_defaults(func=cmd_eval_unknowns)
