"""Tests of faceapp.evaluation.lfw_pairs: the pairs.txt parser, and the real LFW protocol file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from faceapp.evaluation.lfw_pairs import Pair, image_name, pair_arrays, read_pairs

# ---------------------------------------------------------------------- pairs parser


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pairs.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_image_name() -> None:
    assert image_name("Aaron_Peirsol", 1) == "Aaron_Peirsol_0001.jpg"
    assert image_name("X", 123) == "X_0123.jpg"
    with pytest.raises(ValueError):
        image_name("X", 0)


def test_read_pairs_tiny(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "2\t1\nAlice\t1\t2\nAlice\t1\tBob\t3\n\nCarol 2 4\nDan 1 Eve 12\n",
    )
    pairs = read_pairs(path)
    assert pairs == [
        Pair("Alice_0001.jpg", "Alice_0002.jpg", True, 0),
        Pair("Alice_0001.jpg", "Bob_0003.jpg", False, 0),
        Pair("Carol_0002.jpg", "Carol_0004.jpg", True, 1),
        Pair("Dan_0001.jpg", "Eve_0012.jpg", False, 1),
    ]
    labels, folds = pair_arrays(pairs)
    np.testing.assert_array_equal(labels, [True, False, True, False])
    np.testing.assert_array_equal(folds, [0, 0, 1, 1])
    assert folds.dtype == np.int64


def test_read_pairs_two_per_class(tmp_path: Path) -> None:
    path = _write(tmp_path, "1 2\nA 1 2\nB 3 1\nA 1 B 1\nC 2 D 5\n")
    pairs = read_pairs(path)
    assert [p.same for p in pairs] == [True, True, False, False]
    assert {p.fold for p in pairs} == {0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("1\nA 1 2\nA 1 B 2\n", r"line 1: header must be"),
        ("1 x\nA 1 2\nA 1 B 2\n", r"line 1: header fields must be integers"),
        ("0 1\n", r"line 1: header numbers must be positive"),
        ("1 1\nA 1 B 2\nA 1 B 2\n", r"line 2: expected 3 fields"),
        ("1 1\nA 1 2\nA 1 2\n", r"line 3: expected 4 fields"),
        ("1 1\nA 1 two\nA 1 B 2\n", r"line 2: image index 'two' is not an integer"),
        ("1 1\nA 1 2\nA 1 B 2.5\n", r"line 3: image index '2.5' is not an integer"),
        ("1 1\nA 0 2\nA 1 B 2\n", r"line 2: image index 0 must be >= 1"),
        ("1 1\nA 2 2\nA 1 B 2\n", r"line 2: .*image 2 of A twice"),
        ("1 1\nA 1 2\nA 1 A 2\n", r"line 3: .*names A twice"),
        (
            "2 1\nA 1 2\nA 1 B 2\n",
            r"promises 2 folds x 2 pairs = 4 pair lines, but the file has 2",
        ),
        (
            "1 1\nA 1 2\nA 1 B 2\nC 1 2\n",
            r"promises 1 folds x 2 pairs = 2 pair lines, but the file has 3",
        ),
    ],
)
def test_read_pairs_malformed(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_pairs(_write(tmp_path, text))


def test_read_pairs_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_pairs(tmp_path / "nope.txt")


# ------------------------------------------------------------------ real LFW pairs


def test_real_lfw_pairs(lfw_dir: Path) -> None:
    pairs = read_pairs(lfw_dir / "pairs.txt")
    assert len(pairs) == 6000
    assert sum(p.same for p in pairs) == 3000
    labels, folds = pair_arrays(pairs)
    np.testing.assert_array_equal(np.bincount(folds), [600] * 10)
    np.testing.assert_array_equal(np.bincount(folds, weights=labels), [300] * 10)
    assert pairs[0] == Pair("Abel_Pacheco_0001.jpg", "Abel_Pacheco_0004.jpg", True, 0)
    present = set(os.listdir(lfw_dir / "images"))
    missing = {name for p in pairs for name in (p.left, p.right)} - present
    assert not missing, f"{len(missing)} images named in pairs.txt are missing, e.g. {sorted(missing)[:3]}"
