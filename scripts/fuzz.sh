#!/usr/bin/env bash
# Runs every fuzz target (frame parsers, micro-BFD, probe replies, ifconfig words, rc.conf, the
# TOML document, the HTTP request parsers) for a bounded time (default 20 s each) with cargo fuzz on the pinned
# nightly; fails on any crash. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
nightly="${XLAGG_NIGHTLY:-nightly-2026-07-01}"
command -v cargo-fuzz >/dev/null || { echo "fuzz.sh: cargo-fuzz is missing; run scripts/setup.sh" >&2; exit 1; }
mkdir -p fuzz/corpus
for target in slow_pdu flow_hash bfd_packet probe_reply ifconfig_words rcconf config_toml http_request; do
  mkdir -p "fuzz/corpus/$target"
  echo "== fuzz $target for ${seconds}s"
  seeds=()
  [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
  log="fuzz/$target.log"
  if ! cargo "+$nightly" fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" "${seeds[@]}" -- \
      -max_total_time="$seconds" -max_len=2048 -print_final_stats=1 > "$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz.sh: $target failed or found a crash (input in fuzz/artifacts/$target)" >&2
    exit 1
  fi
  grep -E "^Done|stat::number_of_executed_units" "$log" || true
done
echo "fuzzing passed"
