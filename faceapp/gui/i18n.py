"""The interface's languages: Qt translators for FaceApp's own strings (compiled
``assets/translations/faceapp_<locale>.qm``, from the ``.ts`` sources that
``tools/translations.py`` keeps) and for Qt's standard dialogs (Qt's ``qtbase`` catalogue).

The language is ``--lang`` if given, else the one chosen in the settings, else the
system's (``QLocale.system()``); English needs no translation. The CLI stays English.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

from faceapp.paths import ASSETS_DIR

logger = logging.getLogger(__name__)

TRANSLATIONS_DIR = ASSETS_DIR / "translations"
#: Languages the interface speaks: locale name -> its own name for itself.
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}

_installed: list[QTranslator] = []  # kept alive: Qt does not own them


def translate(context: str, text: str) -> str:
    """``text`` in the interface's language, for code outside a QObject (the tools find
    every ``translate("Context", "text")`` call when they collect the strings)."""
    return QCoreApplication.translate(context, text)


def available_languages() -> dict[str, str]:
    """English and every language whose compiled catalogue ships."""
    shipped = {path.stem.removeprefix("faceapp_") for path in TRANSLATIONS_DIR.glob("faceapp_*.qm")}
    return {code: name for code, name in LANGUAGES.items() if code == "en" or code in shipped}


def resolve_language(requested: str | None) -> str:
    """The language to use: ``requested`` ("zh_CN", "zh", "en", "system" or None)."""
    if requested and requested.lower() not in ("system", "auto"):
        code = requested.replace("-", "_")
    else:
        code = QLocale.system().name()  # e.g. "zh_CN", "en_GB"
    languages = available_languages()
    if code in languages:
        return code
    base = code.split("_")[0]
    return next((known for known in languages if known.split("_")[0] == base), "en")


def install_translators(app: QCoreApplication, requested: str | None = None) -> str:
    """Load the catalogues for the chosen language into ``app``; returns the language."""
    for translator in _installed:
        app.removeTranslator(translator)
    _installed.clear()
    language = resolve_language(requested)
    if language == "en":
        return language
    ours = QTranslator(app)
    if ours.load(str(TRANSLATIONS_DIR / f"faceapp_{language}.qm")):
        app.installTranslator(ours)
        _installed.append(ours)
    else:
        logger.warning("no interface translation for %s in %s", language, TRANSLATIONS_DIR)
        return "en"
    qt = QTranslator(app)
    if qt.load(QLocale(language), "qtbase", "_", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)):
        app.installTranslator(qt)
        _installed.append(qt)
    QLocale.setDefault(QLocale(language))
    return language
