"""``faceapp gallery ACTION``: list and manage the enrolled people, export and import,
encryption, embeddings-only mode, moving the gallery to another model (reembed), and
copying it to another gallery, a file or a PostgreSQL server (copy)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from faceapp.cli import decisions
from faceapp.cli.common import (
    ask_passphrase,
    gallery_path,
    local_time,
    no_trace_on_failure,
    open_gallery,
    print_json,
    print_report,
    protected_files,
)
from faceapp.files import check_input_file, check_output_path

logger = logging.getLogger(__name__)


def _list(args, gallery) -> None:
    people = gallery.people()
    if args.json:
        print_json([{"name": p.name, "templates": p.template_count, "not_them": p.negative_count,
                     "threshold": p.threshold, "created": local_time(p.created_at, "%Y-%m-%dT%H:%M:%S")} for p in people])
    elif not people:
        print(f"the gallery {gallery.path} is empty")
    else:
        width = max(len(p.name) for p in people)
        for p in people:
            extra = (f"  {p.negative_count} not them" if p.negative_count else "") + (
                f"  own threshold {p.threshold:.3f}" if p.threshold is not None else "")
            print(f"{p.name:<{width}}  {p.template_count:>3} template(s)  added {local_time(p.created_at, '%Y-%m-%d %H:%M')}{extra}")


def _export(args, gallery) -> None:
    from faceapp.storage.archive import export_gallery

    check_output_path(args.file, protected_files(args), "export")
    passphrase = ask_passphrase(args, args.file, new=True) if args.encrypt else None
    path = export_gallery(gallery, args.file, passphrase=passphrase)
    print(f"exported {len(gallery.people())} people to {path}" + (" (encrypted)" if passphrase else ""))


def _import(args, gallery) -> None:
    from faceapp.embedding.modelcard import card_for_gallery, shipped_card
    from faceapp.paths import model_chosen
    from faceapp.storage.archive import archive_is_encrypted, archive_model_id, import_gallery

    check_input_file(args.file, "FaceApp export (zip) file")
    passphrase = ask_passphrase(args, args.file) if archive_is_encrypted(args.file) else None
    # Imported embeddings must be the model's: its id and dimension (the gallery's own model when none is chosen).
    card = card_for_gallery(args.model, gallery)
    if not model_chosen(args.model) and gallery.model_id() is None:
        found = shipped_card(archive_model_id(args.file, passphrase))
        if found is not None:  # an empty gallery and no --model: a shipped model's archive brings its model
            card = found[1]
    summary = import_gallery(gallery, args.file, on_conflict=args.on_conflict, passphrase=passphrase,
                             model_id=card.model_id, dim=card.embedding_dim)
    print(
        f"imported {summary.people_added} new people, merged {summary.people_merged}, "
        f"skipped {summary.people_skipped}; {summary.templates_added} template(s) added"
    )


def _embeddings_only(args, gallery) -> None:
    if args.state == "on":
        deleted = gallery.set_embeddings_only(True)
        print(f"embeddings-only mode is on: {deleted} face thumbnail(s) deleted and wiped")
    elif args.state == "off":
        gallery.set_embeddings_only(False)
        print("embeddings-only mode is off: new enrollments keep a face thumbnail")
    else:
        print(f"embeddings-only mode is {'on' if gallery.embeddings_only else 'off'}")


def _rename(args, gallery) -> None:
    person = gallery.rename(args.old, args.new)
    print(f"renamed '{args.old}' to '{person.name}'")


def _merge(args, gallery) -> None:
    person = gallery.merge(args.source, args.target)
    print(f"merged '{args.source}' into '{person.name}' ({person.template_count} template(s))")


def _remove(args, gallery) -> None:
    gallery.remove(args.name)
    print(f"removed '{args.name}'")


def _encrypt(args, gallery) -> None:
    gallery.encrypt(ask_passphrase(args, str(gallery.path), new=True))
    print(f"encrypted the faces in {gallery.path} (names stay readable); the passphrase cannot be recovered")


def _decrypt(args, gallery) -> None:
    gallery.decrypt(ask_passphrase(args, str(gallery.path)))
    print(f"{gallery.path} is no longer encrypted")


def _passwd(args, gallery) -> None:
    old = ask_passphrase(args, str(gallery.path))
    gallery.change_passphrase(old, ask_passphrase(args, str(gallery.path), new=True))
    print(f"changed the passphrase of {gallery.path}")


def _reembed(args, gallery) -> None:
    from faceapp.embedding.ensemble import make_embedder
    from faceapp.embedding.modelcard import load_card
    from faceapp.storage.reembed import format_report, reembed_gallery

    embedder = make_embedder(load_card(args.model), device=args.device)
    report = reembed_gallery(gallery, embedder, dry_run=args.dry_run, force=args.force)
    print_report(args, report.to_json(), format_report(report))


ACTIONS = {
    "list": _list, "rename": _rename, "merge": _merge, "remove": _remove, "export": _export, "import": _import,
    "encrypt": _encrypt, "decrypt": _decrypt, "passwd": _passwd, "embeddings-only": _embeddings_only, "reembed": _reembed,
}


#: Actions that only read the gallery: they open it read-only (so it may be on read-only media).
READING = ("list", "export")


def _copy(args: argparse.Namespace) -> int:
    """``gallery copy SRC DST``: the whole gallery into a new one, in one transaction on DST."""
    from faceapp.errors import FaceAppError
    from faceapp.storage.copy import copy_gallery
    from faceapp.storage.gallery import Gallery
    from faceapp.storage.locations import describe, is_server_url

    locations = []
    for given in (args.source, args.target):
        if not str(given).strip():
            raise FaceAppError("gallery copy: SRC and DST must name a gallery file or a postgresql:// URL")
        locations.append(given if is_server_url(given) else Path(given).expanduser())
    source_at, target_at = locations
    if not is_server_url(source_at) and not os.path.isfile(source_at):
        raise FaceAppError(f"no gallery at {source_at}")
    same = source_at == target_at or (not is_server_url(source_at) and not is_server_url(target_at)
                                      and os.path.exists(target_at) and os.path.samefile(source_at, target_at))
    if same:
        raise FaceAppError("gallery copy: SRC and DST are the same gallery")
    passphrase = ask_passphrase(args, describe(source_at)) if Gallery.is_encrypted_file(source_at) else None
    target_passphrase = ask_passphrase(args, describe(target_at)) if Gallery.is_encrypted_file(target_at) else None
    with (Gallery(source_at, passphrase=passphrase, read_only=True, create=False) as source,
          no_trace_on_failure(target_at), Gallery(target_at, passphrase=target_passphrase, create=True) as target):
        summary = copy_gallery(source, target, passphrase=passphrase)
        print(summary.line(str(source.path), str(target.path)))
    return 0


def cmd_gallery(args: argparse.Namespace) -> int:
    action = args.gallery_command
    if action in decisions.ACTIONS:
        return decisions.cmd_decision(args)
    if action == "copy":
        return _copy(args)
    if action == "import":  # may create the gallery: a failed import leaves no trace
        with no_trace_on_failure(gallery_path(args)), open_gallery(args, create=True) as gallery:
            ACTIONS[action](args, gallery)
        return 0
    with open_gallery(args, read_only=action in READING) as gallery:
        ACTIONS[action](args, gallery)
    return 0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``gallery`` and its actions to the CLI's subparsers."""
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
    remove = actions.add_parser("remove", parents=[common], help="remove a person with all their templates and sightings")
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
    reembed = actions.add_parser(
        "reembed", parents=[common],
        help="recompute every template with the model in use (--model), from the stored face thumbnails",
        description="Recompute every template of the gallery with the model chosen by --model (default: the "
        "fused SFace + dlib model), from the face pictures stored at enrolment, in one transaction. Templates "
        "without one cannot be recomputed, nor, for the fused model, those that hold only the 112x112 crop "
        "galleries stored before it (too tight for dlib's chip): they are removed only with --force, and "
        "their people named (those left with none must be enrolled again). Sightings follow where they can.",
    )
    reembed.add_argument("--dry-run", action="store_true", help="only say what would happen")
    reembed.add_argument("--force", action="store_true",
                         help="also remove templates that have no usable stored face (and re-embed a gallery already made by this model)")
    reembed.add_argument("--json", action="store_true", help="print the report as JSON")
    copy = actions.add_parser(
        "copy", parents=[common], help="copy the whole gallery into a new one (a file or a postgresql:// URL, either way)",
        description="Copy a gallery (people, templates, 'not them' faces, own thresholds, sightings, unknown visitors, "
        "privacy settings) into a new, empty one: from a file to a PostgreSQL server, back, or file to file. "
        "Everything lands in one transaction on DST. An encrypted source is encrypted with the same passphrase "
        "on DST (on a server, its embeddings then cannot be indexed: matching is done on each desktop).",
    )
    copy.add_argument("source", metavar="SRC", help="the gallery to copy: a file or postgresql://USER@HOST/DB")
    copy.add_argument("target", metavar="DST", help="the new gallery: a file that does not exist yet, or an empty database")
    decisions.register(actions, common)
    gallery.set_defaults(func=cmd_gallery)
