"""``faceapp recognize``: recognition over a video, stream, webcam or image folder."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from faceapp.cli.argtypes import non_negative_float, non_negative_int, positive_float, positive_int
from faceapp.cli.common import build_recognizer, open_gallery, protected_files, show_progress
from faceapp.errors import ConfigError
from faceapp.media.privacy import BLUR_CHOICES
from faceapp.media.reader import DEFAULT_STALL_TIMEOUT_S

logger = logging.getLogger(__name__)


def _alerts(args: argparse.Namespace, gallery, source: str):
    """The alert rules and command of ``--on-event`` / ``--alert`` (None without a command).
    A person named by ``--alert`` must be enrolled (their enrolled spelling is used)."""
    from faceapp.recognition.alerts import SPECIAL, AlertRule, Alerts, CommandAction

    if args.on_event is None:
        if args.alert:
            raise ConfigError("--alert needs --on-event CMD (the command to run for each alert)")
        return None, None
    rules = []
    for who in args.alert or ["anyone"]:
        rule = AlertRule.parse(who, args.alert_cooldown, source)
        if rule.who not in SPECIAL:
            rule = AlertRule(gallery.person(rule.who).name, source, rule.cooldown_s)  # one line if not enrolled
        rules.append(rule)
    command = CommandAction(args.on_event)
    return Alerts(rules, [command]), command


def cmd_recognize(args: argparse.Namespace) -> int:
    from faceapp.media.sources import SourceSpec
    from faceapp.recognition.memory import Memory
    from faceapp.recognition.run import run_recognition
    from faceapp.recognition.visitors import VisitorConfig

    protected = protected_files(args)
    source = str(SourceSpec.parse(args.source))  # as the desktop app names it ("webcam 0", a path)
    keep = not args.no_sightings
    # Sightings are written to the gallery (the default one is created for them).
    with open_gallery(args, read_only=not keep, create=keep and not args.gallery) as gallery:
        alerts, command = _alerts(args, gallery, source)
        recognizer = build_recognizer(args, gallery, live=True)
        memory = None
        if keep and gallery.read_only:
            logger.warning("the gallery %s cannot be written: sightings are not kept", gallery.path)
            keep = False
        if keep or alerts is not None:
            memory = Memory(gallery, recognizer.embedder.model_id, recognizer.card.embedding_dim, source,
                            config=VisitorConfig.from_card(recognizer.card.visitors), on_event=alerts, keep=keep)
        try:
            summary = run_recognition(
                recognizer, args.source, out=args.out, events=args.events, max_frames=args.max_frames,
                show_progress=show_progress(args), tracking=not args.no_tracking, blur=args.blur,
                stall_timeout_s=args.stall_timeout, max_reconnects=args.max_reconnects, protected=protected, memory=memory,
            )
        finally:
            if command is not None:
                command.close()
    print(summary.describe() + (f"; {alerts.fired} alert(s)" if alerts is not None else ""))
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
    recognize.add_argument("--no-sightings", action="store_true",
                           help="do not remember sightings or unknown visitors (default: every track is kept in the gallery)")
    recognize.add_argument("--on-event", metavar="CMD",
                           help="run CMD for each alert, with the event's JSON on its standard input (no shell)")
    recognize.add_argument("--alert", action="append", metavar="WHO",
                           help="alert for this person, 'unknown', 'known' or 'anyone' (repeatable; default: anyone)")
    recognize.add_argument("--alert-cooldown", type=non_negative_float, default=60.0, metavar="S",
                           help="after an alert for someone, stay silent about them this long (default: 60 s)")
    recognize.set_defaults(func=cmd_recognize)
