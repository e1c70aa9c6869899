#!/usr/bin/env bash
# Runs the whole xlagg test suite on this machine, as root (`--unit`: only what needs no root): set-up (idempotent), one build,
# unit tests, then the namespace tests (real veths, XDP programs and AF_XDP sockets, LACP
# against xlagg and Open vSwitch), a bounded fuzz run of the frame parsers, then the
# appliance image booted in QEMU. Fails loudly if it cannot run; never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

# The eBPF crate is its own workspace (built for the BPF target with the pinned nightly), so
# the workspace's fmt and clippy do not see it (nor the fuzz targets' formatting). `--unit` lints it where that nightly and its
# clippy are installed and says so where they are not; the full run always does.
ebpf_lints() {
  cargo fmt --manifest-path ebpf/xdp/Cargo.toml --all -- --check
  # The fuzz targets are a crate of their own too (built by cargo fuzz).
  rustfmt --edition 2021 --check fuzz/fuzz_targets/*.rs
  local nightly="${XLAGG_NIGHTLY:-nightly-2026-07-01}"
  if [ "${1:-}" = --unit ] && ! rustup component list --toolchain "$nightly" --installed 2>/dev/null | grep -q '^clippy'; then
    echo "test.sh: eBPF crate not linted: ${nightly} with clippy is not installed (scripts/setup.sh installs it)"
    return 0
  fi
  (cd ebpf/xdp && cargo +"$nightly" clippy --locked --target bpfel-unknown-none -Z build-std=core --bins -- -D warnings)
}

# --unit: everything that needs no root (lints, unit and property tests, the virtual-clock
# simulations, the control crate's own tests); no set-up, for a quick check while working.
if [ "${1:-}" = "--unit" ]; then
  # shellcheck disable=SC1091
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --locked -- -D warnings
  # As the image builds xlaggd: without the testing feature's hooks.
  cargo clippy -p xlagg-control -p xlagg-dataplane --all-targets --locked -- -D warnings
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
  ebpf_lints --unit
  cargo test --workspace --locked --lib --bins
  cargo test -p xlagg-control --locked --test cli_docs --test counters_used --test store_crash
  echo "unit tests passed"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: the namespace tests need root (network namespaces, XDP, AF_XDP); run it as root" >&2
  exit 1
fi
scripts/setup.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p xlagg-control -p xlagg-dataplane --all-targets --locked -- -D warnings
# The module docs argue the design; a link that no longer resolves is a doc that went stale.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
ebpf_lints

echo "== build"
cargo build --workspace --all-targets --locked

echo "== unit tests"
cargo test --workspace --locked --lib --bins

echo "== namespace and kernel tests"
cargo test --workspace --locked --test '*' -- --test-threads=1

echo "== fuzzing (bounded)"
scripts/fuzz.sh 20

echo "== appliance image and boot test"
scripts/boot-test.sh

echo "== stray namespaces check"
left=$(scripts/testbed.sh list)
if [ -n "$left" ]; then
  echo "tests left namespaces behind: $left" >&2
  exit 1
fi
echo "all tests passed"
