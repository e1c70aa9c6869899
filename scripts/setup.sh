#!/usr/bin/env bash
# Installs everything xlagg needs on a fresh Debian bookworm machine:
#   - apt packages: LLVM 22 (for bpf-linker), iproute2, ethtool, tcpdump, jq, Open vSwitch,
#     Chromium, iperf3, dhcpcd and dnsmasq, and for the appliance image and its boot test
#     mmdebstrap, mtools, dosfstools, gdisk, QEMU and OVMF
#   - the pinned nightly (with rust-src) that builds the XDP program
#   - bpf-linker, linked against LLVM 22, and cargo-fuzz
# Idempotent: when everything is already there it returns in about a second.
set -euo pipefail

NIGHTLY="${XLAGG_NIGHTLY:-nightly-2026-07-01}"
# openvswitch-switch: the independent LACP partner of the interop tests (started by the tests,
# never as a service).
# chromium (headless) drives the web UI and dashboard tests; fonts-dejavu-core gives it a font.
# iperf3: TCP and UDP through laggN, the traffic users carry (tests and xlagg-bench tcp).
# dhcpcd-base: the DHCP client xlaggd runs on a host-mode laggN (`dhcp = true`, the DHCP and
# SYNCDHCP words); dnsmasq-base: the tests' DHCP server on the partner side. Both without
# their services. mmdebstrap, mtools, dosfstools, gdisk: scripts/image.sh builds the appliance
# disk without loop devices; qemu-system-x86 and ovmf boot it in the boot test.
APT_PACKAGES=(llvm-22-dev libpolly-22-dev libzstd-dev iproute2 ethtool tcpdump jq iputils-ping procps openvswitch-switch
  chromium fonts-dejavu-core iperf3 dhcpcd-base dnsmasq-base
  mmdebstrap mtools dosfstools gdisk e2fsprogs qemu-system-x86 ovmf curl)

log() { printf 'setup: %s\n' "$*" >&2; }

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing apt packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! command -v rustup >/dev/null 2>&1; then
  echo "setup: rustup is not installed; install it (https://rustup.rs) and run this script again" >&2
  exit 1
fi

# rust-src builds core for the BPF target; clippy lints the eBPF crate (scripts/test.sh).
if ! rustup toolchain list | grep -q "^${NIGHTLY}"; then
  log "installing ${NIGHTLY} with rust-src and clippy"
  rustup set auto-self-update disable
  rustup toolchain install "$NIGHTLY" --profile minimal -c rust-src -c clippy
else
  installed=$(rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null)
  for c in rust-src clippy; do
    grep -q "^${c}" <<<"$installed" || rustup component add "$c" --toolchain "$NIGHTLY"
  done
fi

if ! command -v bpf-linker >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/bpf-linker" ]; then
  log "building bpf-linker against LLVM 22 (about a minute)"
  LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --locked --no-default-features --features llvm-22
fi

if ! command -v cargo-fuzz >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo-fuzz" ]; then
  log "installing cargo-fuzz (the bounded fuzz runs of scripts/fuzz.sh)"
  cargo install cargo-fuzz --locked
fi

# bpffs is not mounted on these machines; aya does not need it, but tools that inspect pinned
# maps do. Mount it where it is missing (harmless when already mounted).
if [ -d /sys/fs/bpf ] && ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
fi

log "ready"
