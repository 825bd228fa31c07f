"""Model files are verified against a checked-in manifest of SHA-256 hashes before they are loaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST_DIR = Path(__file__).parent / "manifests"


class ModelIntegrityError(RuntimeError):
    pass


def file_hashes(model_dir: Path) -> dict[str, str]:
    hashes = {}
    for path in sorted(model_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            hashes[path.relative_to(model_dir).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def manifest_path(name: str, version: str, manifest_dir: Path = MANIFEST_DIR) -> Path:
    return manifest_dir / f"{name}-{version}.json"


def write_manifest(name: str, version: str, model_dir: Path, manifest_dir: Path = MANIFEST_DIR) -> Path:
    path = manifest_path(name, version, manifest_dir)
    path.write_text(json.dumps(file_hashes(model_dir), indent=2, sort_keys=True) + "\n")
    return path


def verify(name: str, version: str, model_dir: Path, manifest_dir: Path = MANIFEST_DIR) -> None:
    """Raise unless every file of the model matches the manifest, and no file is missing or extra."""
    path = manifest_path(name, version, manifest_dir)
    if not path.exists():
        raise ModelIntegrityError(f"no hash manifest for {name} {version} ({path}); refusing to load unverified model")
    expected = json.loads(path.read_text())
    actual = file_hashes(model_dir)
    changed = sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    if changed or missing or extra:
        raise ModelIntegrityError(
            f"{name} {version} at {model_dir} does not match its manifest: "
            f"changed={changed[:5]} missing={missing[:5]} extra={extra[:5]}"
        )
