#!/usr/bin/env bash
# Instructions per call on the caller's thread, for each case of the peer suite, counted by
# callgrind: immune to the load of a shared machine. Only the timed part is counted
# (`Peers::chunk`, through --toggle-collect: set-up, untimed flushes and shut-down are not), and
# only on the main thread (--separate-threads=yes): workers, reporters and batch processors run
# on threads of their own.
#
# Run: benches/peers/callgrind.sh [case ...]   (from the workspace root; default: every case)
set -euo pipefail
N=${N:-40400}
cargo build --release -p ops-peers --bin peers-callgrind >&2
bin="${CARGO_TARGET_DIR:-target}/release/peers-callgrind"
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  cases=(plain_fn ops_off tracing_off fastrace_off ops_tree tracing_registry_tree fastrace_tree otel_bsp_tree)
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Instructions on the main thread for `case` run `n` times.
count() {
  local case=$1 n=$2 out="$dir/$1.$2"
  valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \
    --toggle-collect='*Peers*chunk*' --callgrind-out-file="$out" \
    "$bin" "$case" "$n" >/dev/null 2>"$out.log" || { cat "$out.log" >&2; exit 1; }
  awk '/^(summary|totals):/ { print $2; exit }' "$out-01"
}
printf '%-24s %s\n' case instructions_per_call
for case in "${cases[@]}"; do
  total=$(count "$case" "$N")
  printf '%-24s %s\n' "$case" $(( total / N ))
done
