"""What a worker checks and prepares before it takes any work, however it is started (`slimline worker`
or plain `celery -A tasks.app worker`; see workers/lifecycle/): producer keys or an explicit opt-out,
the audit key, encrypted models decrypted into sealed memory files, and a marker that lets `status` and
`health` see a worker that accepts unsigned messages."""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

from workers.settings import Settings, get_settings

log = logging.getLogger(__name__)

UNSIGNED_MARKER_PREFIX = "slimline:unsigned:"
UNSIGNED_MARKER_SECONDS = 120


class StartRefused(Exception):
    """The worker must not start: the message says why and what to do (printed as one line, exit 2)."""


def check_signing(config: Settings) -> bool:
    """True when the worker verifies signatures. No keys: refuse to start, unless unsigned work is
    explicitly allowed (then warn). Keys without the workers' own: refuse (retries could not be signed)."""
    from workers.runtime.publish import Signer, keyring_from_settings
    from workers.security.producers import KeyConfigError

    try:
        keyring = keyring_from_settings(config)
        Signer.for_workers(config, keyring)
    except KeyConfigError as error:
        raise StartRefused(str(error)) from None
    if keyring:
        return True
    if not config.allow_unsigned:
        raise StartRefused("refusing to start: no producer keys (SLIMLINE_PRODUCER_KEYS_FILE or SLIMLINE_PRODUCER_KEYS), "
                           "so anyone who reaches Redis could enqueue work; configure keys (docs/signing.md) or set "
                           "SLIMLINE_ALLOW_UNSIGNED=true for a trusted, private Redis")
    log.warning("signing is off (SLIMLINE_ALLOW_UNSIGNED=true): this worker accepts unsigned messages from anyone "
                "who can reach Redis")
    return False


def check_audit_key() -> None:
    from workers.db.store import audit_signing_from_settings
    from workers.security.audit_chain import AuditKeyError

    try:
        if audit_signing_from_settings() is None:
            log.warning("no audit key (SLIMLINE_AUDIT_KEY or SLIMLINE_AUDIT_KEY_FILE): audit rows are stored without "
                        "their tamper-evident chain")
    except AuditKeyError as error:
        raise StartRefused(str(error)) from None


class UnsignedMarker:
    """A key refreshed while the worker runs (expiring two minutes after a crash), so that `status` and
    `health` can warn that a live worker accepts unsigned work."""

    def __init__(self, config: Settings) -> None:
        self.config = config
        self.key = f"{UNSIGNED_MARKER_PREFIX}{socket.gethostname()}:{os.getpid()}"
        self._stopped = threading.Event()
        self._refresher = threading.Thread(target=self._refresh, name="slimline-unsigned-marker", daemon=True)

    def start(self) -> None:
        self._refresher.start()

    def _refresh(self) -> None:
        from workers.runtime.queues import inspection_client

        while not self._stopped.is_set():
            try:
                inspection_client(self.config).set(self.key, "1", ex=UNSIGNED_MARKER_SECONDS)
            except Exception as error:  # noqa: BLE001 - Redis down: the worker reconnects on its own
                log.debug("could not refresh %s: %r", self.key, error)
            self._stopped.wait(UNSIGNED_MARKER_SECONDS / 4)

    def stop(self) -> None:
        from workers.runtime.queues import inspection_client

        self._stopped.set()
        if self._refresher.is_alive():
            self._refresher.join(timeout=5)  # a refresh in progress must not bring the key back
        try:
            inspection_client(self.config).delete(self.key)
        except Exception:  # noqa: BLE001 - it expires on its own
            pass


def unsigned_workers(client: object) -> int:
    return sum(1 for _ in client.scan_iter(match=f"{UNSIGNED_MARKER_PREFIX}*", count=500))  # type: ignore[attr-defined]


# --- encrypted models -------------------------------------------------------------------------------

def is_encrypted_model(path: Path | None) -> bool:
    from workers.security.model_crypto import SUFFIX

    return path is not None and path.is_dir() and any(path.rglob(f"*{SUFFIX}"))


def decrypted_view(enc_dir: Path, key: bytes) -> tuple[Path, dict[str, str]]:
    """Decrypt every file of an encrypted model folder into a sealed memory file of this process, and
    give the runtime a folder of links to them (``/proc/self/fd/N``: only this process and the pool
    processes it forks can open them; the folder holds no data and is removed at exit). Returns the
    folder and the SHA-256 of each decrypted file (the model's own manifest check runs on them when
    it loads)."""
    from workers.security.model_crypto import SUFFIX, decrypt_to_memfd

    view = Path(tempfile.mkdtemp(prefix="slimline-model-"))
    atexit.register(shutil.rmtree, view, ignore_errors=True)
    hashes = {}
    for path in sorted(enc_dir.rglob(f"*{SUFFIX}")):
        relative = path.relative_to(enc_dir).as_posix()[: -len(SUFFIX)]
        memory_file = decrypt_to_memfd(path, key)
        with open(memory_file, "rb") as handle:
            hashes[relative] = hashlib.file_digest(handle, "sha256").hexdigest()
        link = view / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(memory_file)
    return view, hashes


def open_encrypted_models(config: Settings) -> dict[str, str]:
    """Decrypt the configured encrypted model folders (the transactions risk model, ONNX encoders and
    spaCy NER folders) before the pool forks, and point the settings at the decrypted views. A wrong or
    missing key refuses the start. Returns ``{file: sha256}`` for the audit log."""
    from workers.security.model_crypto import EnvironmentOrFileKey, ModelKeyError

    overrides: dict[str, str] = {}
    hashes: dict[str, str] = {}
    provider = EnvironmentOrFileKey(config.model_key, config.model_key_file)
    try:
        for section, name in (("transactions", "model_dir"), ("documents", "encoder_model_dir"),
                              ("documents", "classifier"), ("documents", "escalated_classifier")):
            folder = getattr(getattr(config, section), name)
            if is_encrypted_model(folder):
                view, files = decrypted_view(folder, provider.model_key())
                overrides[f"SLIMLINE_{section.upper()}__{name.upper()}"] = str(view)
                hashes |= {f"{section}.{name}/{file}": digest for file, digest in files.items()}
        ner = dict(config.documents.ner_models)
        for language, model in ner.items():
            if is_encrypted_model(Path(model)):
                view, files = decrypted_view(Path(model), provider.model_key())
                ner[language] = str(view)
                hashes |= {f"ner.{language}/{file}": digest for file, digest in files.items()}
        if ner != config.documents.ner_models:
            overrides["SLIMLINE_DOCUMENTS__NER_MODELS"] = json.dumps(ner)
    except ModelKeyError as error:
        raise StartRefused(f"cannot open the encrypted model: {error}") from None
    if overrides:
        os.environ.update(overrides)
        get_settings.cache_clear()
        log.info("decrypted %d model file(s) into sealed memory files", len(hashes))
    return hashes
