"""Files a user names: inputs that must be regular files, outputs that must never be the
gallery or an input, and writes that leave either the whole new file or nothing.

* :func:`check_input_file`: an input must exist and be a regular file. A FIFO, a socket or
  a device would block (or never end) on reading, so it is refused at once, by name.
* :func:`check_output_path`: an output must not be the same file (by real path, or by
  device and inode for hard links) as anything protected: the gallery and its ``-wal``
  and ``-shm`` companions, the model files, the command's inputs.
* :class:`AtomicOutput`: the data goes to a temporary file beside the target, which is
  renamed over it only once everything was written; a failure removes the temporary file
  and leaves an existing target untouched. Devices and FIFOs (``/dev/stdout``,
  ``/dev/full``) are written directly.
* :func:`os_error_line`: an :class:`OSError` as one line that says what is wrong
  (read-only, full, too long, not allowed...).
"""

from __future__ import annotations

import errno
import glob
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from faceapp.errors import FaceAppError

#: What the common errno values mean for a user, in a few words.
_REASONS = {
    errno.ENOENT: "no such file or folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "not allowed",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EISDIR: "is a folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EEXIST: "already exists",
    errno.EFBIG: "the file is too large",
    errno.EIO: "input/output error (a failing disk or medium?)",
    errno.ELOOP: "too many symbolic links",
    errno.EXDEV: "cannot move across file systems",
}


class OutputClashError(FaceAppError):
    """An output file would overwrite the gallery, a model or an input."""


class SpecialFileError(FaceAppError):
    """An input is a FIFO, socket or device where a regular file is needed."""


def os_error_line(error: OSError) -> str:
    """The reason of an OSError in a few words (never a traceback)."""
    reason = _REASONS.get(error.errno or -1) or error.strerror or str(error)
    if error.errno == errno.EEXIST and error.filename and os.path.isfile(error.filename):
        reason = f"a part of the path is a file, not a folder ({display_name(error.filename)})"  # mkdir through a file
    return " ".join(str(reason).split())


def display_name(path: str | os.PathLike) -> str:
    """A path as printable text: bytes that are not UTF-8 (a file named with a 0xFF byte)
    become U+FFFD instead of lone surrogates, which cannot be stored or printed."""
    text = os.fspath(path)
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "replace")


def on_read_only_filesystem(path: str | os.PathLike) -> bool:
    """True when ``path`` (or, if it does not exist, its nearest existing folder) lies on
    a file system mounted read-only."""
    p = Path(os.fspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return bool(os.statvfs(p).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows) or no access: cannot tell
        return False


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def check_input_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` as a Path if it is an existing regular file; else a one-line FaceAppError
    (missing, a folder, a FIFO, a device...), without ever opening it."""
    p = Path(os.fspath(path))
    try:
        mode = p.stat().st_mode
    except OSError as error:
        raise FaceAppError(f"{p}: {os_error_line(error)}") from None
    if not stat.S_ISREG(mode):
        raise SpecialFileError(f"{p}: is {_kind(mode)}, not a {what}")
    return p


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def same_file(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """True when both name one file: the same real path, or the same device and inode
    (hard links)."""
    a, b = Path(os.fspath(first)), Path(os.fspath(second))
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):
        pass
    ia, ib = _identity(a), _identity(b)
    return ia is not None and ia == ib


#: What a search index file being written is called meanwhile: ``G.faceindex.partial-XXXX``.
PARTIAL = ".partial-"
#: The search index beside the gallery ``G``: ``G.faceindex`` and its sidecar ``G.faceindex.json``.
SEARCH_INDEX_SUFFIXES = (".faceindex", ".faceindex.json")
#: What the previous version's index (usearch HNSW, embeddings in clear) was called: never read
#: any more, deleted when the new index is saved, and with the gallery's own files (removal, move).
LEGACY_SEARCH_INDEX_SUFFIXES = (".hnsw", ".hnsw.json")


def search_index_files(gallery: str | os.PathLike) -> list[Path]:
    """The search index kept beside a large gallery file, the real one a symlink points
    to: ``.faceindex`` and its ``.faceindex.json`` first, then the previous version's
    ``.hnsw`` and ``.hnsw.json``, and any copy of them left half written."""
    p = Path(os.path.realpath(os.fspath(gallery)))
    files = [p.with_name(p.name + suffix) for suffix in SEARCH_INDEX_SUFFIXES + LEGACY_SEARCH_INDEX_SUFFIXES]
    partial: list[Path] = []
    for stem in (".faceindex", ".hnsw"):
        try:
            partial += sorted(p.parent.glob(glob.escape(p.name) + stem + "*" + PARTIAL + "*"))
        except OSError:
            pass
    return files + partial


def gallery_files(gallery: str | os.PathLike) -> list[Path]:
    """The gallery file, its SQLite companions (``-wal``, ``-shm``, ``-journal``) and its
    search index."""
    p = Path(os.fspath(gallery))
    return [p, *(p.with_name(p.name + suffix) for suffix in ("-wal", "-shm", "-journal")), *search_index_files(p)]


def check_output_path(path: str | os.PathLike, protected: Iterable[tuple[str, str | os.PathLike]], what: str = "output") -> Path:
    """Refuse an output ``path`` that is one of the ``protected`` files, given as
    ``(description, path)`` pairs, e.g. ``("the gallery", ...)``, ``("the input", ...)``.
    Also refuses an empty name and an existing folder. Returns the path."""
    text = os.fspath(path)
    if not str(text).strip():
        raise FaceAppError(f"the {what} file name is empty")
    p = Path(text)
    for description, other in protected:
        if other is not None and str(other) != "" and same_file(p, other):
            raise OutputClashError(f"{p}: the {what} would overwrite {description} ({other}); choose another file")
    try:
        is_folder = p.is_dir()
    except OSError as error:  # a name too long, a path through a file...
        raise FaceAppError(f"{p}: {os_error_line(error)}") from None
    if is_folder:
        raise FaceAppError(f"{p}: is a folder; the {what} needs a file name")
    try:
        mode = p.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISBLK(mode)):
        raise SpecialFileError(f"{p}: is {_kind(mode)}; the {what} needs a regular file (or a character device)")
    return p


def remove_empty_folders(folders: Iterable[Path]) -> None:
    """Remove each of ``folders`` (innermost first) that is empty; never raises."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            pass


def regular_target(path: str | os.PathLike, what: str = "output") -> Path:
    """The file a whole-file write should replace: a symlink's target (the link stays),
    never a folder, device, FIFO or socket (renaming over one would replace it; opening
    a FIFO blocks). Raises FaceAppError."""
    text = os.fspath(path)
    dest = Path(os.path.realpath(text)) if os.path.islink(text) else Path(text)
    try:
        mode = dest.stat().st_mode
    except FileNotFoundError:
        return dest
    except OSError as error:
        raise FaceAppError(f"cannot write the {what} {dest}: {os_error_line(error)}") from None
    if not stat.S_ISREG(mode):
        raise SpecialFileError(f"cannot write the {what} {dest}: it is {_kind(mode)}; choose a file name")
    return dest


def _new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0666 less the process's umask (read from
    /proc on Linux, else assumed 022; never changed, as os.umask would, for other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def write_json(path: str | os.PathLike, data: Any, *, what: str = "file", indent: int | None = 2, **dumps: Any) -> Path:
    """Write ``data`` as UTF-8 JSON (non-ASCII kept, a final newline) completely or not at
    all (:class:`AtomicOutput`); ``dumps``: more :func:`json.dumps` options (e.g. ``default``)."""
    import json

    text = json.dumps(data, indent=indent, ensure_ascii=False, **dumps) + "\n"
    with AtomicOutput(path, "w", what=what, encoding="utf-8") as handle:
        handle.write(text)
    return Path(path)


class AtomicOutput:
    """Write a file completely or not at all.

    ``with AtomicOutput(path, "w", encoding="utf-8") as handle: ...`` writes to a
    temporary file in the target's folder and renames it over ``path`` when the block
    ends without an exception; otherwise the temporary file is removed. An existing
    non-regular target (a device, a FIFO) is opened and written directly. OS errors
    become one-line FaceAppErrors naming the file.
    """

    def __init__(self, path: str | os.PathLike, mode: str = "wb", *, what: str = "file", **open_kwargs: Any) -> None:
        if mode not in ("w", "wb"):
            raise ValueError("AtomicOutput writes text ('w') or bytes ('wb')")
        # Through a symlink, write its target and keep the link.
        text = os.fspath(path)
        self.path = Path(os.path.realpath(text)) if os.path.islink(text) else Path(text)
        self.mode = mode
        self.what = what
        self.open_kwargs = open_kwargs
        self._temporary: Path | None = None
        self._handle: IO | None = None

    def _error(self, error: OSError) -> FaceAppError:
        return FaceAppError(f"cannot write the {self.what} {self.path}: {os_error_line(error)}")

    def __enter__(self) -> IO:
        try:
            existing = self.path.stat().st_mode
        except FileNotFoundError:
            existing = None
        except OSError as error:
            raise self._error(error) from None
        try:
            if existing is not None and not stat.S_ISREG(existing):
                if stat.S_ISDIR(existing):
                    raise FaceAppError(f"{self.path}: is a folder; the {self.what} needs a file name")
                self._handle = open(self.path, self.mode, **self.open_kwargs)
                return self._handle
            descriptor, name = tempfile.mkstemp(prefix=f".{self.path.name[:100]}.", suffix=".tmp", dir=self.path.parent or ".")
            self._temporary = Path(name)
            # mkstemp's file is private (0600): give it the mode the replaced file had, or a new file's.
            os.fchmod(descriptor, stat.S_IMODE(existing) if existing is not None else _new_file_mode())
            self._handle = os.fdopen(descriptor, self.mode, **self.open_kwargs)
            return self._handle
        except OSError as error:
            raise self._error(error) from None

    def __exit__(self, kind, value, traceback) -> None:
        handle, self._handle = self._handle, None
        temporary, self._temporary = self._temporary, None
        try:
            if handle is not None:
                try:
                    handle.close()
                except OSError as error:  # e.g. the last buffer did not fit on the disk
                    if kind is None:
                        kind, value = OSError, error
            if kind is None and temporary is not None:
                try:
                    os.replace(temporary, self.path)
                    temporary = None
                except OSError as error:
                    raise self._error(error) from None
        finally:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
        if kind is not None and issubclass(kind, OSError) and value is not None:
            raise self._error(value) from None
