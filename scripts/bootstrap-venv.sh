#!/usr/bin/env bash
# Create the project's virtual environment on a fresh Debian/Ubuntu machine: Python 3.10+ is all
# it assumes; the venv module (a separate Debian package) is installed when it is missing.
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}

"$python" - <<'PY' || { echo "edgeloop needs Python 3.10 or newer ($python is older)" >&2; exit 1; }
import sys
sys.exit(sys.version_info < (3, 10))
PY

if ! "$python" -c "import ensurepip, venv" >/dev/null 2>&1; then
  version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  scripts/apt-install.sh "python${version}-venv" python3-venv
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
