#!/usr/bin/env bash
# Starts weave's SQLite trace server behind server.py's HTTP routes on 127.0.0.1, with its
# database in WORK_DIR, and waits until it answers. Prints "PID PORT" on success.
# Usage: start.sh PORT WORK_DIR
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PORT="$1"; WORK="$2"
VENV="$("$HERE/setup.sh")"
mkdir -p "$WORK"
LOG="$WORK/weave.log"
export WEAVE_DISABLED=true WANDB_SILENT=true WANDB_MODE=disabled DO_NOT_TRACK=true
setsid nohup "$VENV/bin/python" "$HERE/server.py" --port "$PORT" --db "$WORK/weave.db" >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 240); do
  if curl -fsS "http://127.0.0.1:$PORT/server_info" >/dev/null 2>&1; then
    echo "$PID $PORT"; exit 0
  fi
  if ! kill -0 "$PID" 2>/dev/null; then echo "weave trace server exited; log: $LOG" >&2; tail -20 "$LOG" >&2; exit 1; fi
  sleep 0.25
done
echo "weave trace server did not answer within 60 s; log: $LOG" >&2; kill "$PID" 2>/dev/null || true; exit 1
