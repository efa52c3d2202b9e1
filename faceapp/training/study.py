"""Where a hyper-parameter search (:mod:`faceapp.training.search`) keeps its optuna study.

``storage``: an SQLAlchemy URL such as ``sqlite:///study.db`` or
``postgresql://user:password@host:port/db`` (opened with psycopg 3 when it names no
driver: :func:`storage_url`); by default the SQLite file ``OUT_DIR/search/study.db``.
Several machines pointed at one PostgreSQL database share one study; opening it is
retried when they race to create optuna's tables. A study remembers the settings it was
made with and refuses others (:func:`open_study`). Passwords are never printed
(:func:`redact`). optuna is imported lazily (:func:`import_optuna`): it is in the
``train`` extra.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from faceapp.training.config import changed_settings

logger = logging.getLogger(__name__)

STUDY_FILE = "study.db"
INSTALL_HINT = "pip install -e '.[train]'"


class SearchError(ValueError):
    """optuna missing, a storage that cannot be opened, or a study made with other settings."""


def import_optuna():
    """optuna, quiet (warnings only), or :class:`SearchError` naming the extra to install."""
    try:
        import optuna
    except ImportError:
        raise SearchError(f"--search needs optuna, which is not installed: {INSTALL_HINT}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def default_storage(out_dir: str | os.PathLike) -> str:
    """``sqlite:///OUT_DIR/study.db`` (absolute), so a rerun continues the study."""
    return f"sqlite:///{(Path(out_dir) / STUDY_FILE).resolve()}"


def redact(url: str) -> str:
    """``url`` without its password (``postgresql://user:***@host/db``)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


#: URL schemes without a driver mapped to the driver the project ships (psycopg 3, the
#: ``postgres`` extra); SQLAlchemy's own default for ``postgresql://`` would be psycopg2.
_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


def storage_url(url: str) -> str:
    """The SQLAlchemy URL optuna opens for ``url``: ``postgresql://`` (or ``postgres://``)
    without a driver becomes ``postgresql+psycopg://`` (psycopg 3); a URL naming its
    driver (``postgresql+psycopg2://``), SQLite and the rest are left as they are."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in _DEFAULT_DRIVERS:
        return f"{_DEFAULT_DRIVERS[scheme.lower()]}://{rest}"
    return url


def _hide_password(message: str, url: str) -> str:
    """``message`` with ``url``'s password (should a driver quote it) replaced by ``***``."""
    match = re.search(r"://[^:/@]*:([^@/]+)@", url)
    if match:
        from urllib.parse import unquote

        for secret in {match.group(1), unquote(match.group(1))}:
            message = message.replace(secret, "***")
    return message


def open_study(storage: str, study_name: str, setup: dict[str, Any], pruner=None):
    """Create or load the study; :class:`SearchError` if the storage cannot be opened or
    the study was made with another ``setup``."""
    optuna = import_optuna()
    pruner = pruner if pruner is not None else optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    url = storage_url(storage)
    try:
        study = _create_study(optuna, url, study_name, pruner)
    except ImportError as error:
        raise SearchError(f"cannot open the study storage {redact(storage)}: {_hide_password(str(error), storage)} "
                          "(install its database driver)") from None
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's errors: one line for the user
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SearchError(f"cannot open the study storage {redact(storage)}: {_hide_password(message, storage)}") from None
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise SearchError(f"study {study_name!r} in {redact(storage)} minimises its objective: not a faceapp search")
    known = study.user_attrs.get("faceapp_setup")
    if known is None:
        study.set_user_attr("faceapp_setup", setup)
    elif known != setup:
        differ = changed_settings(known, setup)
        raise SearchError(f"study {study_name!r} in {redact(storage)} was made with other settings ({', '.join(differ)}): "
                          "run with the same options and data, or choose another --study-name")
    return study


def _create_study(optuna, url: str, study_name: str, pruner, attempts: int = 4):
    """``optuna.create_study`` on ``url`` (loading the study if it exists). A database
    server is opened with ``pool_pre_ping`` (a connection it dropped during a long trial
    is replaced), and the opening is retried when machines starting at once race to
    create optuna's tables (an IntegrityError or ProgrammingError for all but one)."""
    if url.startswith("sqlite"):
        return optuna.create_study(storage=url, study_name=study_name, direction="maximize", load_if_exists=True,
                                   pruner=pruner)
    import sqlalchemy.exc

    for attempt in range(1, attempts + 1):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
            return optuna.create_study(storage=storage, study_name=study_name, direction="maximize", load_if_exists=True,
                                       pruner=pruner)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            if attempt == attempts:
                raise
            logger.info("study storage busy (%s), retrying", type(error).__name__)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")
