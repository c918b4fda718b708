#!/usr/bin/env bash
# Installs schemathesis (PyPI) into a cached virtualenv. Idempotent; prints the venv path.
set -euo pipefail
VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
HOME_DIR="${OPS_E2E_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/ops-e2e}"
VENV="$HOME_DIR/schemathesis-$VERSION"
if [ ! -x "$VENV/bin/st" ]; then
  mkdir -p "$HOME_DIR"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION" >&2
fi
echo "$VENV"
