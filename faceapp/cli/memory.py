"""``faceapp sightings`` and ``faceapp unknowns``: who was seen when, and the unknown
visitors remembered (see :mod:`faceapp.recognition.memory`)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import logging
import sys
from typing import Any

from faceapp.cli.argtypes import non_negative_float, row_id
from faceapp.cli.common import build_recognizer, local_time, open_gallery, print_json
from faceapp.errors import FaceAppError

logger = logging.getLogger(__name__)


def moment(text: str) -> float:
    """``2026-12-01``, ``2026-12-01T13:05``, ``today``, ``yesterday``, or ``3d`` / ``2h`` /
    ``30m`` ago (also ``-3d``) -> unix time (local time zone)."""
    value = text.strip().lower()
    now = dt.datetime.now()
    try:
        if value in ("today", "yesterday"):
            day = now.replace(hour=0, minute=0, second=0, microsecond=0)
            return (day - dt.timedelta(days=1 if value == "yesterday" else 0)).timestamp()
        amount = value.lstrip("-")[:-1]
        if value[-1:] in ("d", "h", "m") and amount.replace(".", "", 1).isdigit():
            unit = {"d": 86400, "h": 3600, "m": 60}[value[-1]]
            return now.timestamp() - float(amount) * unit
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except (ValueError, OverflowError, OSError):
        raise argparse.ArgumentTypeError(f"expected a date or time (2026-12-01, 2026-12-01T13:05, today, 3d, 2h ago), "
                                         f"got {text!r}") from None


# -- sightings ------------------------------------------------------------------------------
def _list_sightings(args, gallery) -> None:
    if args.person and args.unknown:
        raise FaceAppError("--person and --unknown exclude each other")
    rows = gallery.sightings(since=args.since, until=args.until, person=args.person, unknown=args.unknown)
    if args.json:
        print_json({"sightings": [s.to_json() for s in rows]})
    elif args.csv:
        writer = csv.writer(sys.stdout)
        keys = ["id", "label", "person", "visitor", "source", "file", "first_seen", "last_seen", "first_frame", "last_frame",
                "frames", "best_similarity"]
        writer.writerow(keys)
        for s in rows:
            data = s.to_json()
            data["first_seen"], data["last_seen"] = local_time(s.first_seen), local_time(s.last_seen)
            writer.writerow([data[k] for k in keys])
    elif not rows:
        print("no sightings" + (" in that time" if args.since or args.until else ""))
    else:
        for s in rows:
            where = s.file or s.source
            frames = f"frames {s.first_frame}-{s.last_frame}" if s.first_frame is not None and s.file is None else ""
            print(f"{s.id:>6}  {local_time(s.first_seen)} - {local_time(s.last_seen)[11:]}  {s.label:<20} {s.frames:>5} frame(s)  "
                  f"best {s.best_similarity:.2f}  {where} {frames}".rstrip())


def _purge(args, gallery) -> None:
    count = gallery.purge_sightings(args.before)
    print(f"purged {count} sighting(s)" + ("" if args.before is not None else f" older than {gallery.retention_days:g} days"))


def _retention(args, gallery) -> None:
    if args.days is not None:
        gallery.set_retention_days(args.days)
    days = gallery.retention_days
    print("sightings are kept for ever" if days == 0 else f"sightings are kept for {days:g} days")


def _not(args, gallery) -> None:
    person = gallery.unassign(args.id)
    print(f"sighting {args.id} is not '{person}': stored as not them, and the sighting is an unknown again")


def _name_sighting(args, gallery) -> None:
    sighting = gallery.sighting(args.id)
    _give(args, gallery, [sighting], args.name, wrong=sighting.person)
    print(f"sighting {args.id} is '{args.name}' now")


def _give(args, gallery, sightings, name: str, wrong: str | None = None, visitor: int | None = None) -> int:
    from faceapp.recognition.corrections import give_sightings

    return give_sightings(gallery, build_recognizer(args, gallery), sightings, name, wrong=wrong, visitor=visitor)


# -- unknowns -------------------------------------------------------------------------------
def _list_unknowns(args, gallery) -> None:
    visitors = gallery.visitors()
    report = []
    for v in visitors:
        sightings = gallery.sightings(visitor=v.id)
        report.append({"id": v.id, "label": v.label, "sightings": [
            {"id": s.id, "source": s.source, "file": s.file, "frame": s.first_frame if s.file is None else None,
             "first_seen": round(s.first_seen, 3), "last_seen": round(s.last_seen, 3)} for s in reversed(sightings)]})
    if args.json:
        print_json({"unknowns": report})
    elif not report:
        print("no unknown visitors remembered")
    else:
        for v, entry in zip(visitors, report):
            print(f"{v.label:<14} {v.sightings:>3} sighting(s)  first {local_time(v.first_seen)}  last {local_time(v.last_seen)}")


def _name_unknown(args, gallery) -> None:
    visitor = gallery.visitor(args.id)
    sightings = gallery.sightings(visitor=visitor.id)
    added = _give(args, gallery, sightings, args.name, visitor=visitor.id)
    print(f"{visitor.label} is '{args.name}' now: {len(sightings)} sighting(s) relabelled, {added} template(s) added")


def _merge(args, gallery) -> None:
    visitor = gallery.merge_visitors(args.source, args.target)
    print(f"merged Unknown #{args.source} into {visitor.label} ({visitor.sightings} sighting(s))")


def _dismiss(args, gallery) -> None:
    gone = gallery.dismiss_visitor(args.id)
    print(f"forgot Unknown #{args.id} and {gone} sighting(s) with their crops")


def _recluster(args, gallery) -> None:
    from faceapp.recognition.corrections import recluster_gallery

    recognizer = build_recognizer(args, gallery)
    report = recluster_gallery(gallery, recognizer)
    print(report)


SIGHTINGS = {"list": _list_sightings, "purge": _purge, "retention": _retention, "not": _not, "name": _name_sighting}
UNKNOWNS = {"list": _list_unknowns, "name": _name_unknown, "merge": _merge, "dismiss": _dismiss, "recluster": _recluster}
READING = {"list"}


def cmd_sightings(args: argparse.Namespace) -> int:
    action = args.sightings_command or "list"
    with open_gallery(args, read_only=action in READING) as gallery:
        SIGHTINGS[action](args, gallery)
    return 0


def cmd_unknowns(args: argparse.Namespace) -> int:
    with open_gallery(args, read_only=args.unknowns_command in READING) as gallery:
        UNKNOWNS[args.unknowns_command](args, gallery)
    return 0


def _filters(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """The listing options; after ``list`` their defaults are suppressed, so values given
    before ``list`` are kept."""

    def default(value):
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--since", type=moment, default=default(None), metavar="T",
                        help="seen at or after T (2026-12-01, 2026-12-01T13:05, today, or 3d, 2h, 30m ago)")
    parser.add_argument("--until", type=moment, default=default(None), metavar="T", help="seen at or before T")
    parser.add_argument("--person", default=default(None), metavar="NAME", help="only this person's sightings")
    parser.add_argument("--unknown", action="store_true", default=default(False), help="only unknown faces' sightings")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", default=default(False), help="print machine-readable results")
    out.add_argument("--csv", action="store_true", default=default(False), help="print CSV (times in local time)")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``sightings`` and ``unknowns`` to the CLI's subparsers."""
    sightings = commands.add_parser("sightings", parents=[common], help="who was seen when (one line per track)",
                                    description="List the sightings kept in the gallery (newest first), purge them, or "
                                    "set how long they are kept; correct who a sighting is.")
    _filters(sightings)
    actions = sightings.add_subparsers(dest="sightings_command", metavar="ACTION")
    _filters(actions.add_parser("list", parents=[common], help="list sightings (the default)"), suppress=True)
    purge = actions.add_parser("purge", parents=[common], help="delete old sightings (default: older than the retention)")
    purge.add_argument("--before", type=moment, metavar="DATE", help="delete those last seen before DATE")
    retention = actions.add_parser("retention", parents=[common], help="show or set how long sightings are kept")
    retention.add_argument("days", nargs="?", type=non_negative_float, metavar="DAYS", help="days (0: for ever; default 30)")
    negative = actions.add_parser("not", parents=[common], help="this sighting is not the person it was given: store it as not them")
    negative.add_argument("id", type=row_id, metavar="ID")
    name = actions.add_parser("name", parents=[common], help="this sighting is NAME: give it to them (adding its crop, if good enough)")
    name.add_argument("id", type=row_id, metavar="ID")
    name.add_argument("name", metavar="NAME")
    sightings.set_defaults(func=cmd_sightings)

    unknowns = commands.add_parser("unknowns", parents=[common], help="the unknown visitors remembered (Unknown #N)")
    actions = unknowns.add_subparsers(dest="unknowns_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[common], help="list unknown visitors and their sightings")
    listing.add_argument("--json", action="store_true", help="print machine-readable results")
    name = actions.add_parser("name", parents=[common], help="enroll Unknown #ID as NAME from their best crops")
    name.add_argument("id", type=row_id, metavar="ID")
    name.add_argument("name", metavar="NAME")
    merge = actions.add_parser("merge", parents=[common], help="Unknown #A and #B are the same person: keep B")
    merge.add_argument("source", type=row_id, metavar="A")
    merge.add_argument("target", type=row_id, metavar="B")
    dismiss = actions.add_parser("dismiss", parents=[common], help="forget Unknown #ID, with their sightings and crops")
    dismiss.add_argument("id", type=row_id, metavar="ID")
    actions.add_parser("recluster", parents=[common], help="cluster every unknown sighting again from scratch (DBSCAN)")
    unknowns.set_defaults(func=cmd_unknowns)
