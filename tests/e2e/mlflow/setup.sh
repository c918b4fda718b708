#!/usr/bin/env bash
# Installs MLflow (a real tracking server with OTLP trace ingestion, from PyPI) into a cached
# virtualenv. Idempotent. Prints the venv path.
set -euo pipefail
VERSION="${MLFLOW_VERSION:-3.17.2}"
HOME_DIR="${OPS_E2E_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/ops-e2e}"
VENV="$HOME_DIR/mlflow-$VERSION"
mkdir -p "$HOME_DIR"
# One install at a time (CI starts one in the background while the tests build).
exec 9>"$VENV.lock"
flock 9
# The marker is written only once pip finished: an install cut short is redone.
if [ ! -f "$VENV/.installed" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "mlflow==$VERSION" >&2
  touch "$VENV/.installed"
fi
echo "$VENV"
