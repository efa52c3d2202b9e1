"""``faceapp recognize``: recognition over a video, stream, webcam or image folder."""

from __future__ import annotations

import argparse
from typing import Any

from faceapp.cli.argtypes import non_negative_int, positive_float, positive_int
from faceapp.cli.common import build_recognizer, open_gallery, protected_files, show_progress
from faceapp.media.privacy import BLUR_CHOICES
from faceapp.media.reader import DEFAULT_STALL_TIMEOUT_S


def cmd_recognize(args: argparse.Namespace) -> int:
    from faceapp.recognition.run import run_recognition

    protected = protected_files(args)
    with open_gallery(args, read_only=True) as gallery:
        recognizer = build_recognizer(args, gallery)
        summary = run_recognition(
            recognizer, args.source, out=args.out, events=args.events, max_frames=args.max_frames,
            show_progress=show_progress(args), tracking=not args.no_tracking, blur=args.blur,
            stall_timeout_s=args.stall_timeout, max_reconnects=args.max_reconnects, protected=protected,
        )
    print(summary.describe())
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``recognize`` to the CLI's subparsers."""
    recognize = commands.add_parser("recognize", parents=[common], help="recognise faces frame by frame in a video, stream, webcam or image folder")
    recognize.add_argument("--source", required=True, metavar="SRC", help="webcam index, video file, stream URL or image folder")
    recognize.add_argument("--out", metavar="FILE.mp4", help="write the annotated video")
    recognize.add_argument("--events", metavar="FILE.jsonl", help="write one JSON line per face per frame")
    recognize.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames (needed to end a live source other than by Ctrl+C)")
    recognize.add_argument("--no-tracking", action="store_true",
                           help="recognise every face of every frame on its own (default: track faces, vote names, embed only when needed)")
    recognize.add_argument("--blur", choices=BLUR_CHOICES, default="none",
                           help="blur faces in the --out video: those not enrolled, or all (default: none)")
    recognize.add_argument("--stall-timeout", type=positive_float, default=DEFAULT_STALL_TIMEOUT_S, metavar="S",
                           help=f"a webcam or stream silent this long is reopened (default: {DEFAULT_STALL_TIMEOUT_S:g} s)")
    recognize.add_argument("--max-reconnects", type=non_negative_int, metavar="N",
                           help="give up after N failed reopenings in a row (default: keep trying; Ctrl+C stops)")
    recognize.set_defaults(func=cmd_recognize)
