#!/usr/bin/env bash
# Installs W&B Weave's own trace server code (weave from PyPI, whose SQLite trace server
# stores calls, objects, files and per-project token prices and computes costs as weave's
# server does) into a cached virtualenv. Idempotent. Prints the venv path.
#
# 0.52.42 is the last weave release that ships `weave.trace_server` (later releases carry
# only the client). The other packages are those the trace server's modules import (part
# of weave's `trace-server` extra, and its test extra's `sqlparse`, `clickhouse-connect`,
# `numpy`), pinned; the rest of that extra (litellm, boto3, cloud storage clients) is for
# features the tests do not use.
set -euo pipefail
VERSION="${WEAVE_VERSION:-0.52.42}"
HOME_DIR="${OPS_E2E_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/ops-e2e}"
VENV="$HOME_DIR/weave-$VERSION"
mkdir -p "$HOME_DIR"
# One install at a time (CI starts one in the background while the tests build).
exec 9>"$VENV.lock"
flock 9
# The marker is written only once pip finished: an install cut short is redone.
if [ ! -f "$VENV/.installed" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "weave==$VERSION" \
    emoji==2.16.0 ddtrace==4.16.0 sqlparse==0.6.1 redis==8.2.0 clickhouse-connect==1.13.0 \
    numpy==2.4.6 >&2
  touch "$VENV/.installed"
fi
echo "$VENV"
