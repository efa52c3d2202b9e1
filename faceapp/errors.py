"""Typed exceptions. Every user-facing failure is a :class:`FaceAppError` whose message
is one clear line; the CLI prints it on stderr and exits non-zero, with no traceback."""


class FaceAppError(Exception):
    """Base class of every error the user can cause or fix."""


class ImageReadError(FaceAppError):
    """A file is missing, unreadable, or not an image."""


class NoFaceError(FaceAppError):
    """No face (or not exactly one face, when one is required) was found."""


class ModelError(FaceAppError):
    """A model file is missing, damaged, or does not match its recorded checksum."""


class GalleryError(FaceAppError):
    """The gallery file is corrupt, busy, or the requested change is invalid."""


class UnknownPersonError(GalleryError):
    """A name that is not in the gallery."""


class GalleryChangedError(GalleryError):
    """Another program encrypted, decrypted or re-keyed the open gallery: reopen it."""


class ModelMismatchError(GalleryError):
    """Templates made by another embedding model than the one in use."""


class SourceError(FaceAppError):
    """A camera, video file, stream or image folder cannot be opened or read."""


class ConfigError(FaceAppError):
    """An option or setting out of range (a detector score, a device name, ...)."""
