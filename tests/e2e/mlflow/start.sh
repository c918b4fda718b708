#!/usr/bin/env bash
# Starts an MLflow tracking server on 127.0.0.1 with a SQLite store in WORK_DIR and waits
# until it answers. Prints "PID PORT" on success.
# Usage: start.sh PORT WORK_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PORT="$1"; WORK="$2"
VENV="$("$HERE/setup.sh")"
mkdir -p "$WORK/artifacts"
LOG="$WORK/mlflow.log"
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
setsid nohup "$VENV/bin/mlflow" server --host 127.0.0.1 --port "$PORT" --workers 1 \
  --backend-store-uri "sqlite:///$WORK/mlflow.db" \
  --default-artifact-root "$WORK/artifacts" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 240); do
  if curl -fsS "http://127.0.0.1:$PORT/api/2.0/mlflow/experiments/get?experiment_id=0" >/dev/null 2>&1; then
    echo "$PID $PORT"; exit 0
  fi
  if ! kill -0 "$PID" 2>/dev/null; then echo "mlflow exited; log: $LOG" >&2; tail -20 "$LOG" >&2; exit 1; fi
  sleep 0.5
done
echo "mlflow did not answer within 120 s; log: $LOG" >&2; kill "$PID" 2>/dev/null || true; exit 1
