# Sourced by the other scripts: create or refresh the project's virtualenv (.venv) when what it is installed
# from changed. Needs only Python >= 3.11 with venv (set PYTHON to choose the interpreter).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.installed-$(cat "$root/pyproject.toml" "$root/scripts/install.sh" "$root/scripts/install-models.sh" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setting up $venv (first run, or what it is installed from changed)..." >&2
    # The same script installs the image and the wheel CI tests: this checkout, editable, with the test extras.
    "$root/scripts/install.sh" "$venv" editable >&2
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi
