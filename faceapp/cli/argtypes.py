"""argparse value types shared by the command-line modules (bad values are usage errors)."""

from __future__ import annotations

import argparse


def _whole(text: str, low: int, high: int | None, expected: str) -> int:
    value = int(text)
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _whole(text, 1, None, "a positive whole number")


def row_id(text: str) -> int:
    """A stored row's id: a whole number from 1 to 2**63 - 1 (SQLite's largest)."""
    return _whole(text, 1, 2**63 - 1, "an id, a whole number from 1")


def non_negative_int(text: str) -> int:
    return _whole(text, 0, None, "0 or more")


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number greater than 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number, 0 or more, got {text}")
    return value


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to 2**32 - 1 (what numpy and TensorFlow take)."""
    return _whole(text, 0, 2**32 - 1, f"a whole number from 0 to {2**32 - 1}")


def fold_count(text: str) -> int:
    """A number of cross-validation folds: 2 or more."""
    return _whole(text, 2, None, "2 or more (one fold leaves nothing to train or calibrate on)")
