"""Encryption at rest: passphrase -> key (scrypt), AES-GCM sealed blobs, encrypted files.

Used by :class:`faceapp.storage.gallery.Gallery` (embeddings and thumbnails) and
:mod:`faceapp.storage.archive` (encrypted exports). No Qt, nothing heavy at import: the
``cryptography`` package is imported on first use, and a missing package is a clear
:class:`CryptoUnavailableError`.

Formats::

    sealed blob   = b"\\x01" + nonce (12 random bytes) + AES-256-GCM(ciphertext || tag 16)
    key check     = seal(key, b"faceapp key check v1", aad=b"faceapp:key-check")
    encrypted file= MAGIC (12) + header length (4, big-endian) + header (UTF-8 JSON:
                    {"kdf": {...}, "format": str}) + sealed(payload, aad=MAGIC + header)

The associated data (AAD) of every blob names what it is (e.g. ``faceapp:template:42:embedding``),
so blobs cannot be swapped between rows or columns without failing authentication.

The OS keyring (the optional ``keyring`` package) can remember a gallery's passphrase;
every keyring function returns None / False when no keyring (or no backend) exists.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from dataclasses import dataclass
from typing import Any

from faceapp.errors import FaceAppError, GalleryError

__all__ = [
    "DEFAULT_KDF",
    "ENCRYPTED_MAGIC",
    "PASSPHRASE_ENV",
    "CryptoUnavailableError",
    "KdfParams",
    "PassphraseError",
    "check_key",
    "derive_key",
    "forget_keyring_passphrase",
    "keyring_passphrase",
    "make_key_check",
    "open_encrypted",
    "passphrase_from_env",
    "seal",
    "seal_encrypted",
    "store_keyring_passphrase",
    "unseal",
]

logger = logging.getLogger(__name__)

PASSPHRASE_ENV = "FACEAPP_PASSPHRASE"
KEYRING_SERVICE = "faceapp-gallery"
ENCRYPTED_MAGIC = b"FACEAPP-ENC1"
MAX_HEADER_BYTES = 4096
_BLOB_VERSION = b"\x01"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_CHECK_PLAINTEXT = b"faceapp key check v1"
_KEY_CHECK_AAD = b"faceapp:key-check"
MIN_PASSPHRASE_LENGTH = 1


class PassphraseError(GalleryError):
    """A passphrase is missing or wrong (the GUI asks again on this error)."""


class CryptoUnavailableError(FaceAppError):
    """The ``cryptography`` package is not installed."""


@dataclass(frozen=True)
class KdfParams:
    """scrypt parameters and salt. ``n`` (CPU/memory cost, a power of two) x ``r`` x 128
    bytes of memory: the default (2**15, 8, 1) needs 32 MiB and ~0.1 s."""

    n: int = 2**15
    r: int = 8
    p: int = 1
    salt: bytes = b""

    def with_new_salt(self) -> KdfParams:
        return KdfParams(self.n, self.r, self.p, secrets.token_bytes(16))

    def to_json(self) -> str:
        return json.dumps(
            {"name": "scrypt", "n": self.n, "r": self.r, "p": self.p, "salt": base64.b64encode(self.salt).decode()}
        )

    @classmethod
    def from_json(cls, text: Any) -> KdfParams:
        """Parse and bound-check stored parameters (ValueError if invalid)."""
        try:
            data = json.loads(text) if isinstance(text, (str, bytes)) else text
            if not isinstance(data, dict) or data.get("name") != "scrypt":
                raise ValueError("unknown key derivation")
            n, r, p = data["n"], data["r"], data["p"]
            salt = base64.b64decode(data["salt"], validate=True)
        except (KeyError, TypeError, ValueError, RecursionError) as e:
            raise ValueError(f"invalid key derivation parameters ({e})") from None
        for value in (n, r, p):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("invalid key derivation parameters (not integers)")  # noqa: TRY004  # a parse error
        # Bounds keep a hostile file from asking for gigabytes of memory or hours of CPU.
        if not (2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
            raise ValueError(f"key derivation parameters out of range (n={n}, r={r}, p={p})")
        if n * r * 128 * p > 1 << 30 or not 8 <= len(salt) <= 64:
            raise ValueError("key derivation parameters out of range")
        return cls(n, r, p, salt)


DEFAULT_KDF = KdfParams()


def _aead(key: bytes):
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise CryptoUnavailableError(
            "encryption needs the 'cryptography' package: pip install cryptography"
        ) from e
    return AESGCM(key)


def _check_passphrase(passphrase: object) -> bytes:
    if not isinstance(passphrase, str):
        raise PassphraseError(f"a passphrase must be text, not {type(passphrase).__name__}")
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise PassphraseError("the passphrase cannot be empty")
    try:
        return passphrase.encode("utf-8")
    except UnicodeEncodeError:  # bytes from a non-UTF-8 environment, kept as surrogates
        raise PassphraseError("the passphrase is not valid UTF-8 text (check the terminal's or variable's encoding)") from None


def derive_key(passphrase: str, params: KdfParams) -> bytes:
    """The 256-bit AES key for ``passphrase`` (scrypt with ``params``)."""
    secret = _check_passphrase(passphrase)
    try:
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    except ImportError as e:  # pragma: no cover
        raise CryptoUnavailableError("encryption needs the 'cryptography' package: pip install cryptography") from e
    try:
        return Scrypt(salt=params.salt, length=32, n=params.n, r=params.r, p=params.p).derive(secret)
    except (ValueError, MemoryError) as e:
        raise GalleryError(f"cannot derive the key ({e})") from e


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` bound to ``aad`` (random 96-bit nonce)."""
    nonce = os.urandom(_NONCE_BYTES)
    return _BLOB_VERSION + nonce + _aead(key).encrypt(nonce, bytes(plaintext), aad)


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a :func:`seal` blob; ValueError if it is damaged, swapped or the key is wrong."""
    from cryptography.exceptions import InvalidTag

    blob = bytes(blob)
    if len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES or blob[:1] != _BLOB_VERSION:
        raise ValueError("not an encrypted FaceApp blob")
    nonce = blob[1 : 1 + _NONCE_BYTES]
    try:
        return _aead(key).decrypt(nonce, blob[1 + _NONCE_BYTES :], aad)
    except InvalidTag:
        raise ValueError("authentication failed (wrong key, damaged or swapped data)") from None


def make_key_check(key: bytes) -> bytes:
    """A value stored next to the KDF parameters that tells whether a key is right."""
    return seal(key, _KEY_CHECK_PLAINTEXT, _KEY_CHECK_AAD)


def check_key(key: bytes, key_check: bytes) -> bool:
    """True when ``key`` opens ``key_check``."""
    try:
        return unseal(key, key_check, _KEY_CHECK_AAD) == _KEY_CHECK_PLAINTEXT
    except ValueError:
        return False


# --------------------------------------------------------------------------- encrypted files


def seal_encrypted(payload: bytes, passphrase: str, *, fmt: str, kdf: KdfParams = DEFAULT_KDF) -> bytes:
    """``payload`` as an encrypted file's bytes (see the module docstring)."""
    params = kdf.with_new_salt()
    key = derive_key(passphrase, params)
    header = json.dumps({"format": fmt, "kdf": json.loads(params.to_json())}).encode("utf-8")
    prefix = ENCRYPTED_MAGIC + len(header).to_bytes(4, "big") + header
    return prefix + seal(key, payload, ENCRYPTED_MAGIC + header)


def is_encrypted_file(head: bytes) -> bool:
    """True if bytes read from the start of a file begin an encrypted FaceApp file."""
    return head.startswith(ENCRYPTED_MAGIC)


def open_encrypted(data: bytes, passphrase: str | None, *, fmt: str, what: str) -> bytes:
    """The payload of an encrypted file; PassphraseError if missing/wrong, GalleryError if damaged."""
    if not data.startswith(ENCRYPTED_MAGIC):
        raise GalleryError(f"{what} is not an encrypted FaceApp file")
    if len(data) < len(ENCRYPTED_MAGIC) + 4:
        raise GalleryError(f"{what} is truncated")
    start = len(ENCRYPTED_MAGIC) + 4
    size = int.from_bytes(data[len(ENCRYPTED_MAGIC) : start], "big")
    if size > MAX_HEADER_BYTES or len(data) < start + size:
        raise GalleryError(f"{what} has a damaged header")
    header = data[start : start + size]
    try:
        info = json.loads(header.decode("utf-8"))
        if not isinstance(info, dict):
            raise ValueError("not an object")  # noqa: TRY004  # a parse error
        params = KdfParams.from_json(info.get("kdf"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise GalleryError(f"{what} has a damaged header ({e})") from None
    if info.get("format") != fmt:
        raise GalleryError(f"{what} holds {info.get('format')!r}, expected {fmt!r}")
    if passphrase is None:
        raise PassphraseError(
            f"{what} is encrypted: give its passphrase (set {PASSPHRASE_ENV} or answer the prompt)"
        )
    key = derive_key(passphrase, params)
    try:
        return unseal(key, data[start + size :], ENCRYPTED_MAGIC + header)
    except ValueError:
        raise PassphraseError(f"wrong passphrase for {what} (or the file is damaged)") from None


# --------------------------------------------------------------------------- passphrase sources


def passphrase_from_env() -> str | None:
    """``$FACEAPP_PASSPHRASE`` if set and non-empty, else None."""
    value = os.environ.get(PASSPHRASE_ENV)
    return value or None


def _keyring():
    try:
        import keyring  # type: ignore[import-not-found]
        from keyring.errors import KeyringError  # type: ignore[import-not-found]
    except ImportError:
        return None, Exception
    return keyring, KeyringError


def _account(gallery_path: str | os.PathLike[str]) -> str:
    location = os.fspath(gallery_path)
    if "://" in location:  # a server URL: the same account whichever spelling of its password
        from faceapp.storage.locations import redacted

        return redacted(location)
    return os.path.abspath(location)


def keyring_passphrase(gallery_path: str | os.PathLike[str]) -> str | None:
    """The passphrase the OS keyring remembers for this gallery, or None (also when there
    is no keyring package, no usable backend, or the keyring refuses)."""
    module, error = _keyring()
    if module is None:
        return None
    try:
        return module.get_password(KEYRING_SERVICE, _account(gallery_path))
    except (error, RuntimeError, OSError) as e:
        logger.info("keyring unavailable: %s", e)
        return None


def store_keyring_passphrase(gallery_path: str | os.PathLike[str], passphrase: str) -> bool:
    """Remember the passphrase in the OS keyring; False if there is no usable keyring."""
    module, error = _keyring()
    if module is None:
        return False
    try:
        module.set_password(KEYRING_SERVICE, _account(gallery_path), passphrase)
        return True
    except (error, RuntimeError, OSError) as e:
        logger.info("keyring unavailable: %s", e)
        return False


def forget_keyring_passphrase(gallery_path: str | os.PathLike[str]) -> bool:
    """Remove a remembered passphrase; False if none was stored or there is no keyring."""
    module, error = _keyring()
    if module is None:
        return False
    try:
        module.delete_password(KEYRING_SERVICE, _account(gallery_path))
        return True
    except (error, RuntimeError, OSError) as e:
        logger.info("keyring: %s", e)
        return False
