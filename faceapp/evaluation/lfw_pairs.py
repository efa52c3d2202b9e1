"""Reader for LFW's ``pairs.txt`` (the 10-fold "View 2" verification protocol).

File format (fields separated by tabs or spaces; blank lines are ignored)::

    F N                      header: F folds, N same + N different pairs per fold
    name i j                 N lines: same person, images i and j    } repeated
    name1 i name2 j          N lines: two different people            } F times

The standard file has header ``10 300`` (6000 pairs). Image indices are 1-based and
refer to files named ``NAME_NNNN.jpg`` (index zero-padded to 4 digits) in LFW's
``images/`` folder, e.g. ``Aaron_Peirsol 1 2`` ->
``Aaron_Peirsol_0001.jpg`` / ``Aaron_Peirsol_0002.jpg``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["Pair", "image_name", "pair_arrays", "read_pairs"]


@dataclass(frozen=True)
class Pair:
    """One verification pair.

    Attributes:
        left: image file name relative to the ``images/`` folder, e.g.
            ``"Aaron_Peirsol_0001.jpg"``.
        right: the other image's file name.
        same: ``True`` when both images show the same person.
        fold: 0-based fold index (0..F-1) in the order the folds appear in the file.
    """

    left: str
    right: str
    same: bool
    fold: int


def image_name(name: str, index: int) -> str:
    """Return the LFW file name ``NAME_NNNN.jpg`` of image ``index`` (1-based)."""
    if not name:
        raise ValueError("person name is empty")
    if index < 1:
        raise ValueError(f"image index must be >= 1, got {index}")
    return f"{name}_{index:04d}.jpg"


def _parse_index(text: str, lineno: int) -> int:
    """Parse a 1-based image index, raising ValueError that names the line."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"line {lineno}: image index {text!r} is not an integer"
        ) from None
    if value < 1:
        raise ValueError(f"line {lineno}: image index {value} must be >= 1")
    return value


def _parse_header(fields: list[str], lineno: int) -> tuple[int, int]:
    """Parse the ``F N`` header line."""
    if len(fields) != 2:
        raise ValueError(
            f"line {lineno}: header must be 'FOLDS PAIRS_PER_CLASS' (2 fields), "
            f"got {len(fields)} field(s)"
        )
    try:
        n_folds, per_class = int(fields[0]), int(fields[1])
    except ValueError:
        raise ValueError(
            f"line {lineno}: header fields must be integers, got {' '.join(fields)!r}"
        ) from None
    if n_folds < 1 or per_class < 1:
        raise ValueError(
            f"line {lineno}: header numbers must be positive, got {n_folds} {per_class}"
        )
    return n_folds, per_class


def read_pairs(path: str | PathLike[str]) -> list[Pair]:
    """Read a ``pairs.txt`` file.

    Args:
        path: the pairs file (the standard LFW View 2 file or a smaller one with the
            same layout and its own ``F N`` header).

    Returns:
        ``F * 2N`` pairs in file order: for each fold, its N same-person pairs then its
        N different-person pairs.

    Raises:
        FileNotFoundError / OSError: the file cannot be read.
        ValueError: malformed content, with the 1-based line number: bad header, a line
            with the wrong number of fields for its position (3 for a same-person pair,
            4 for a different-person pair), a non-integer or non-positive index, a
            same-person pair naming one image twice, a different-person pair naming one
            person twice, or a number of pair lines that disagrees with the header.
    """
    file = Path(path)
    if file.exists() and not file.is_file():  # a FIFO would block, a device never end
        raise ValueError(f"{file} is not a regular file")
    text = file.read_text(encoding="utf-8")
    lines = [
        (lineno, line.split())
        for lineno, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
    if not lines:
        raise ValueError(f"{file}: file is empty")
    header_lineno, header_fields = lines[0]
    n_folds, per_class = _parse_header(header_fields, header_lineno)
    body = lines[1:]
    expected = n_folds * 2 * per_class
    if len(body) != expected:
        where = body[-1][0] if body else header_lineno
        raise ValueError(
            f"{file}: header (line {header_lineno}) promises {n_folds} folds x "
            f"{2 * per_class} pairs = {expected} pair lines, but the file has "
            f"{len(body)} (last at line {where})"
        )

    pairs: list[Pair] = []
    for position, (lineno, fields) in enumerate(body):
        fold, offset = divmod(position, 2 * per_class)
        same = offset < per_class
        if same:
            if len(fields) != 3:
                raise ValueError(
                    f"{file}: line {lineno}: expected 3 fields 'name i j' for a "
                    f"same-person pair (fold {fold + 1}), got {len(fields)}"
                )
            name, i_text, j_text = fields
            i, j = _parse_index(i_text, lineno), _parse_index(j_text, lineno)
            if i == j:
                raise ValueError(
                    f"{file}: line {lineno}: same-person pair uses image {i} "
                    f"of {name} twice"
                )
            left, right = image_name(name, i), image_name(name, j)
        else:
            if len(fields) != 4:
                raise ValueError(
                    f"{file}: line {lineno}: expected 4 fields 'name1 i name2 j' for a "
                    f"different-person pair (fold {fold + 1}), got {len(fields)}"
                )
            name1, i_text, name2, j_text = fields
            i, j = _parse_index(i_text, lineno), _parse_index(j_text, lineno)
            if name1 == name2:
                raise ValueError(
                    f"{file}: line {lineno}: different-person pair names {name1} twice"
                )
            left, right = image_name(name1, i), image_name(name2, j)
        pairs.append(Pair(left=left, right=right, same=same, fold=fold))
    logger.debug("read %d pairs in %d folds from %s", len(pairs), n_folds, file)
    return pairs


def pair_arrays(pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and fold indices of ``pairs``, ready for :func:`metrics.kfold_accuracy`.

    Returns:
        ``(labels (n,) bool, folds (n,) int64)``.
    """
    if not pairs:
        raise ValueError("pairs is empty")
    labels = np.fromiter((p.same for p in pairs), dtype=bool, count=len(pairs))
    folds = np.fromiter((p.fold for p in pairs), dtype=np.int64, count=len(pairs))
    return labels, folds
