"""Where FaceApp's files live: the user's gallery and caches, the shipped models, and the
project's shared test data. Each location can be overridden by an environment variable.

* ``$FACEAPP_GALLERY``: the gallery, a file or a ``postgresql://`` URL (default
  ``<user data dir>/faceapp/gallery.sqlite3``).
* ``$FACEAPP_CACHE``: converted models (default: the user cache folder).
* ``$FACEAPP_MODELS``: the model directory (default: the shipped ``models/``).
* ``$FACEAPP_FIXTURES``, ``$FACEAPP_LFW_DIR``, ``$FACEAPP_SFACE_ONNX``,
  ``$FACEAPP_MINIFASNET``: read-only data for tests, benchmarks and model conversion, by
  default in the ``shared/`` folder beside the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent


def _shipped(name: str) -> Path:
    """``faceapp/<name>`` in an installed wheel, else ``<checkout>/<name>`` (the folder
    stays at the top of the repository; the wheel carries it inside the package)."""
    inside = PACKAGE_ROOT / name
    return inside if inside.is_dir() else REPO_ROOT / name


#: The shipped models (weights, detector, card, licences) and the app's assets (icon,
#: desktop entry, translations), found the same way from a checkout and from a wheel.
DEFAULT_MODEL_DIR = _shipped("models")
ASSETS_DIR = _shipped("assets")
SHARED_ROOT = REPO_ROOT.parent / "shared"
REFERENCE_SFACE_ONNX = "face_recognition_sface_2021dec.onnx"


def default_gallery_path() -> Path | str:
    """``$FACEAPP_GALLERY`` (a file, or a ``postgresql://`` URL, returned as is), else
    ``<user data dir>/faceapp/gallery.sqlite3``."""
    override = os.environ.get("FACEAPP_GALLERY")
    if override and "://" in override:
        return override
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("faceapp", appauthor=False)) / "gallery.sqlite3"


def cache_dir() -> Path:
    """Where converted models are cached (``$FACEAPP_CACHE`` overrides)."""
    override = os.environ.get("FACEAPP_CACHE")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("faceapp"))


#: Models named instead of a path (``--model sface``): their card in the shipped directory.
#: ``accurate`` is the default (the fused SFace + dlib model); ``sface`` is SFace alone.
NAMED_MODELS = {"accurate": "sface_dlib_fused.json", "sface": "sface_2021dec.json"}


def model_chosen(override: str | os.PathLike | None = None) -> bool:
    """Whether a model was chosen (``override``, else ``$FACEAPP_MODELS``) rather than defaulted."""
    return bool(override or os.environ.get("FACEAPP_MODELS"))


def _chosen_model(override: str | os.PathLike | None) -> str:
    return str(override or os.environ.get("FACEAPP_MODELS") or DEFAULT_MODEL_DIR)


def model_dir(override: str | os.PathLike | None = None) -> Path:
    """The model directory: ``override``, else ``$FACEAPP_MODELS``, else the shipped one.
    Each may also name a card file (``DIR/NAME.json``: its folder is the directory) or a
    model of :data:`NAMED_MODELS` (the shipped directory)."""
    chosen = _chosen_model(override)
    if chosen in NAMED_MODELS:
        return DEFAULT_MODEL_DIR
    path = Path(chosen)
    return path.parent if path.suffix == ".json" else path


def model_card_file(override: str | os.PathLike | None = None) -> Path | None:
    """The card file the choice of :func:`model_dir` names, or None when it names a directory."""
    chosen = _chosen_model(override)
    if chosen in NAMED_MODELS:
        return DEFAULT_MODEL_DIR / NAMED_MODELS[chosen]
    path = Path(chosen)
    return path if path.suffix == ".json" else None


def fixtures_dir() -> Path:
    """Photos of two people for tests: ``obama/``, ``biden/``, ``groups/``."""
    return Path(os.environ.get("FACEAPP_FIXTURES") or SHARED_ROOT / "fixtures" / "faces").expanduser()


def lfw_dir() -> Path:
    """LFW images and ``pairs.txt`` (``images/NAME_NNNN.jpg``)."""
    return Path(os.environ.get("FACEAPP_LFW_DIR") or SHARED_ROOT / "data" / "lfw").expanduser()


def minifasnet_dir() -> Path:
    """The authors' MiniFASNet ``.pth`` files and sample images (``samples/``), read only by
    ``tools/convert_minifasnet.py`` and the tests: ``$FACEAPP_MINIFASNET``, else
    ``../shared/models/minifasnet``."""
    return Path(os.environ.get("FACEAPP_MINIFASNET") or SHARED_ROOT / "models" / "minifasnet").expanduser()


def reference_sface_onnx() -> Path:
    """OpenCV Zoo's SFace ONNX file, used only as a reference by tests and benchmarks.

    ``$FACEAPP_SFACE_ONNX``, else ``<repo>/.cache/reference/`` where
    ``tools/fetch_reference_model.sh`` puts it. The app itself never needs it.
    """
    override = os.environ.get("FACEAPP_SFACE_ONNX")
    if override:
        return Path(override).expanduser()
    return REPO_ROOT / ".cache" / "reference" / REFERENCE_SFACE_ONNX
