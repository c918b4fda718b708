#!/usr/bin/env bash
# Every figure of the README's performance table, in one run, in the order the table lists
# them. Criterion prints its medians; the callgrind lines count instructions on the caller's
# thread (immune to the machine's load). Takes about 15 minutes on 2 cores.
#
# Run: benches/figures.sh 2>&1 | tee figures.log     (from the workspace root)
set -euo pipefail
target="${CARGO_TARGET_DIR:-target}"
# Criterion's estimates only; `$filter` picks benches by name.
bench() {
  cargo bench "$@" -- --warm-up-time 1 --measurement-time 3 ${filter:-} 2>&1 \
    | grep -vE '^\s*$|Gnuplot|^Benchmarking|outliers|^\s+[0-9]+ \(|Compiling'
}
# Instructions per unit on the main thread, counting only functions matching $toggle.
count() {
  local toggle=$1 per=$2 out
  out=$(mktemp -d)
  shift 2
  valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \
    --toggle-collect="$toggle" --callgrind-out-file="$out/cg" "$@" >/dev/null 2>"$out/log" \
    || { cat "$out/log" >&2; exit 1; }
  echo $(( $(awk '/^(summary|totals):/ { print $2; exit }' "$out/cg-01") / per ))
  rm -rf "$out"
}

echo "== peers: #[traced] beside tracing, fastrace, the OpenTelemetry SDK; end to end beside opentelemetry-otlp"
bench -p ops-peers --bench peers
echo "== peers: instructions per call"
benches/peers/callgrind.sh
echo "== peers: peak RSS with the backend down, 2,000 traces/s for 10 s"
cargo build -q --release -p ops-peers --bins
for backend in hang refuse; do
  for side in ops otel; do "$target/release/peers-rss" "$side" "$backend" 10 2000; done
  # ops with a byte budget about the size of the SDK's queue of 2,048 such spans.
  "$target/release/peers-rss" ops "$backend" 10 2000 5300000
done

echo "== ops-tracing layer beside tracing-opentelemetry"
bench -p ops-tracing --bench layer
cargo build -q --release -p ops-tracing --example callgrind
for case in registry child root otel_child otel_root; do
  echo "layer $case: $(count '*timed_chunk*' 10240 "$target/release/examples/callgrind" "$case" 10240) instructions per span"
done

echo "== three nested #[traced] calls capturing input and output, a trace per outer call"
cargo build -q --release -p ops-core --example callgrind_nested
for _ in 1 2 3; do "$target/release/examples/callgrind_nested" 300000; done
echo "nested3: $(count '*timed_chunk*' 30720 "$target/release/examples/callgrind_nested" 10240) instructions per observation"

echo "== queue: a burst of 100,000 traces (300,000 observations) from 1, 2 and 4 producers"
filter=burst bench -p ops-core --bench queue
