#!/usr/bin/env bash
# Runs schemathesis against the admin API's OpenAPI document, briefly.
# Usage: run.sh VENV BASE_URL TOKEN WORKDIR   (BASE_URL is where the router is nested)
# Runs in WORKDIR, where schemathesis keeps its .schemathesis cache.
set -euo pipefail
VENV="$1"; BASE="$2"; TOKEN="$3"; WORKDIR="$4"
cd "$WORKDIR"
exec "$VENV/bin/st" run "$BASE/openapi.json" \
  --url "$BASE" \
  -H "Authorization: Bearer $TOKEN" \
  --checks all \
  --exclude-checks positive_data_acceptance \
  --phases examples,coverage,fuzzing \
  --max-examples 15 \
  --max-time 40 \
  --workers 1 \
  --request-timeout 10 \
  --seed 17 \
  --no-color
