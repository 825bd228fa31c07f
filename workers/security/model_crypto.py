"""Model weights encrypted at rest: AES-256-GCM in chunks, decrypted into memory at load time.

File format (one encrypted file per model file, named ``<file>.enc``)::

    header  = b"SLENC01\\n" | chunk size (4 bytes, big endian) | salt (16 random bytes)
    chunk i = AES-256-GCM(file key, nonce = i (11 bytes, big endian) | final flag (1 byte),
                          plaintext chunk, associated data = header)       (ciphertext + 16-byte tag)

The file key is HKDF-SHA256(model key, salt): a fresh key per file, so counter nonces never repeat
under one key. Every chunk is authenticated with its index and whether it is the last, so chunks
cannot be reordered, dropped, or the file cut short or extended without the decryption failing;
chunking lets files over 2 GB through (one GCM call takes at most 2**31 - 1 bytes). After
decryption the plaintext is checked against the model's SHA-256 manifest (workers/models/integrity.py).

Runtimes that load from bytes get bytes (:func:`decrypt_to_bytes`); runtimes that need a path get an
anonymous memory file (:func:`decrypt_to_memfd`: ``memfd_create``, sealed read-only, reachable only
from the worker process as ``/proc/self/fd/N``, gone when closed or when the process exits).
"""

from __future__ import annotations

import atexit
import base64
import binascii
import fcntl
import hashlib
import io
import json
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from workers.models.integrity import ModelIntegrityError, manifest_path

MAGIC = b"SLENC01\n"
SUFFIX = ".enc"
HEADER = struct.Struct(">8sI16s")
TAG_BYTES = 16
KEY_BYTES = 32
DEFAULT_CHUNK_BYTES = 4 * 2**20
MAX_CHUNK_BYTES = 2**30
_HKDF_INFO = b"slimline model file v1"


class ModelKeyError(RuntimeError):
    """The model key is missing, malformed, or does not decrypt the files (a clear, secret-free message)."""


class KeyProvider(Protocol):
    """Where the 32-byte model key comes from; a KMS client implements this one method."""

    def model_key(self) -> bytes: ...


def parse_key(text: str, source: str) -> bytes:
    """A key written as base64 (standard or URL-safe) of 32 bytes."""
    cleaned = text.strip()
    standard = (cleaned + "=" * (-len(cleaned) % 4)).replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        raise ModelKeyError(f"{source} is not base64") from None
    if len(key) != KEY_BYTES:
        raise ModelKeyError(f"{source} must be {KEY_BYTES} bytes (base64), got {len(key)}")
    return key


class EnvironmentOrFileKey:
    """``SLIMLINE_MODEL_KEY`` (base64), else ``SLIMLINE_MODEL_KEY_FILE`` (a file holding the base64)."""

    def __init__(self, key: SecretStr | None, key_file: Path | None) -> None:
        self._key, self._key_file = key, key_file

    def model_key(self) -> bytes:
        if self._key is not None:
            return parse_key(self._key.get_secret_value(), "SLIMLINE_MODEL_KEY")
        if self._key_file is not None:
            try:
                text = self._key_file.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as error:
                raise ModelKeyError(f"cannot read the model key file {self._key_file}: "
                                    f"{getattr(error, 'strerror', None) or 'not ASCII'}") from None
            return parse_key(text, f"model key file {self._key_file}")
        raise ModelKeyError("the model is encrypted and no key is configured: set SLIMLINE_MODEL_KEY or "
                            "SLIMLINE_MODEL_KEY_FILE")


def generate_key() -> str:
    """A new model key, base64."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def _file_cipher(key: bytes, salt: bytes) -> AESGCM:
    if len(key) != KEY_BYTES:
        raise ModelKeyError(f"the model key must be {KEY_BYTES} bytes")
    file_key = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=_HKDF_INFO).derive(key)
    return AESGCM(file_key)


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def encrypt_stream(source: BinaryIO, target: BinaryIO, key: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
    if not 1 <= chunk_bytes <= MAX_CHUNK_BYTES:
        raise ValueError(f"chunk size must be 1..{MAX_CHUNK_BYTES} bytes")
    header = HEADER.pack(MAGIC, chunk_bytes, os.urandom(16))
    cipher = _file_cipher(key, header[-16:])
    target.write(header)
    index, chunk = 0, source.read(chunk_bytes)
    while True:
        following = source.read(chunk_bytes) if len(chunk) == chunk_bytes else b""
        final = not following
        target.write(cipher.encrypt(_nonce(index, final), chunk, header))
        if final:
            return
        index, chunk = index + 1, following


def decrypt_stream(source: BinaryIO, key: bytes, name: str = "file") -> Iterator[bytes]:
    """Plaintext chunks; raises ModelKeyError for a wrong key or an altered, cut or extended file."""
    header = source.read(HEADER.size)
    if len(header) != HEADER.size or not header.startswith(MAGIC):
        raise ModelKeyError(f"{name} is not an encrypted Slimline model file")
    _, chunk_bytes, salt = HEADER.unpack(header)
    if not 1 <= chunk_bytes <= MAX_CHUNK_BYTES:
        raise ModelKeyError(f"{name} has an invalid chunk size")
    cipher = _file_cipher(key, salt)
    sealed_bytes = chunk_bytes + TAG_BYTES
    index, sealed = 0, source.read(sealed_bytes)
    while True:
        if len(sealed) < TAG_BYTES:
            raise ModelKeyError(f"{name} is cut short (chunk {index} missing)")
        following = source.read(sealed_bytes)  # the last chunk is the one nothing follows
        final = not following
        try:
            plaintext = cipher.decrypt(_nonce(index, final), sealed, header)
        except InvalidTag:
            if index == 0:
                raise ModelKeyError(f"the model key does not decrypt {name}: wrong key, or the file was altered") from None
            raise ModelKeyError(f"{name} was altered, reordered, cut short or extended (chunk {index})") from None
        yield plaintext
        if final:
            return
        index, sealed = index + 1, following


def encrypt_model_dir(src: Path, dst: Path, key: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[Path]:
    """Encrypt every file of a model folder into ``dst`` (same layout, ``.enc`` added); returns them."""
    if dst.resolve().is_relative_to(src.resolve()):
        raise ValueError("the encrypted folder must not be inside the model folder")
    written = []
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        target = dst / (path.relative_to(src).as_posix() + SUFFIX)
        target.parent.mkdir(parents=True, exist_ok=True)
        with path.open("rb") as source, target.open("wb") as sink:
            encrypt_stream(source, sink, key, chunk_bytes)
        written.append(target)
    return written


def _decrypt_into(path: Path, key: bytes, write: Callable[[bytes], object]) -> str:
    """Decrypt ``path`` through ``write``; returns the plaintext's SHA-256."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for chunk in decrypt_stream(source, key, str(path)):
            digest.update(chunk)
            write(chunk)
    return digest.hexdigest()


def decrypt_to_bytes(path: Path, key: bytes) -> bytes:
    buffer = io.BytesIO()
    _decrypt_into(path, key, buffer.write)
    return buffer.getvalue()


_memfds: dict[str, int] = {}


def decrypt_to_memfd(path: Path, key: bytes) -> str:
    """Decrypt into an anonymous, sealed memory file; returns ``/proc/self/fd/N`` for runtimes that
    open a path. Only this process (and root) can open it; :func:`release` or exit frees it."""
    descriptor = os.memfd_create(f"slimline-model:{path.name}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.fchmod(descriptor, 0o400)

        def write_all(chunk: bytes) -> None:
            data = memoryview(chunk)
            while data:
                data = data[os.write(descriptor, data):]

        _decrypt_into(path, key, write_all)
        fcntl.fcntl(descriptor, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
        os.lseek(descriptor, 0, os.SEEK_SET)
    except BaseException:
        os.close(descriptor)
        raise
    proc_path = f"/proc/self/fd/{descriptor}"
    _memfds[proc_path] = descriptor
    return proc_path


def release(proc_path: str) -> None:
    descriptor = _memfds.pop(proc_path, None)
    if descriptor is not None:
        os.close(descriptor)


@atexit.register
def release_all() -> None:
    for proc_path in list(_memfds):
        release(proc_path)


def check_manifest(hashes: dict[str, str], name: str, version: str, manifest_dir: Path) -> None:
    """Raise ModelIntegrityError unless the decrypted files are exactly those of the manifest."""
    path = manifest_path(name, version, manifest_dir)
    if not path.exists():
        raise ModelIntegrityError(f"no hash manifest for {name} {version} ({path}); refusing to load unverified model")
    expected = json.loads(path.read_text())
    changed = sorted(k for k in expected.keys() & hashes.keys() if expected[k] != hashes[k])
    missing, extra = sorted(expected.keys() - hashes.keys()), sorted(hashes.keys() - expected.keys())
    if changed or missing or extra:
        raise ModelIntegrityError(f"encrypted {name} {version} does not match its manifest after decryption: "
                                  f"changed={changed[:5]} missing={missing[:5]} extra={extra[:5]}")


def _encrypted_files(enc_dir: Path) -> dict[str, Path]:
    files = {p.relative_to(enc_dir).as_posix()[: -len(SUFFIX)]: p
             for p in sorted(enc_dir.rglob(f"*{SUFFIX}")) if p.is_file()}
    if not files:
        raise ModelKeyError(f"{enc_dir} holds no encrypted model files (*{SUFFIX})")
    return files


def load_encrypted_model(enc_dir: Path, key: bytes, name: str, version: str, manifest_dir: Path) -> dict[str, bytes]:
    """Every file of an encrypted model folder, decrypted in memory and checked against the manifest."""
    files = {relative: decrypt_to_bytes(path, key) for relative, path in _encrypted_files(enc_dir).items()}
    check_manifest({relative: hashlib.sha256(data).hexdigest() for relative, data in files.items()},
                   name, version, manifest_dir)
    return files


def open_encrypted_model(enc_dir: Path, key: bytes, name: str, version: str, manifest_dir: Path) -> dict[str, str]:
    """Every file of an encrypted model folder as a sealed memory file (relative name → path),
    checked against the manifest; for runtimes that load from paths."""
    paths: dict[str, str] = {}
    hashes: dict[str, str] = {}
    try:
        for relative, path in _encrypted_files(enc_dir).items():
            paths[relative] = decrypt_to_memfd(path, key)
            with open(paths[relative], "rb") as handle:
                hashes[relative] = hashlib.file_digest(handle, "sha256").hexdigest()
        check_manifest(hashes, name, version, manifest_dir)
    except BaseException:
        for proc_path in paths.values():
            release(proc_path)
        raise
    return paths
