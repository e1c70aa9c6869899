#!/usr/bin/env bash
# The xlagg demo, as root: builds the namespace test bed with 4 member ports, starts xlaggd
# with a 4-port loadbalance lagg in forward mode, pushes 1000 flows of test traffic through it,
# then a ping through a host-mode lagg0, then LACP against a second xlaggd on the partner side,
# and prints the per-port counters (and LACP state) of both ends.
# Everything it creates is removed at the end, also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/demo.sh: needs root (network namespaces, XDP, AF_XDP); run it as root" >&2
  exit 1
fi
scripts/setup.sh
# shellcheck disable=SC1091
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --workspace --locked
bin=target/release
id="demo$$"
work=$(mktemp -d)
daemon=""
partner=""
cleanup() {
  [ -n "$partner" ] && kill -TERM "$partner" 2>/dev/null && wait "$partner" 2>/dev/null || true
  [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  scripts/testbed.sh down "$id"
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

start_xlaggd() { # config -> waits for "ready"
  ip netns exec "xl-$id-app" "$bin/xlaggd" --config "$1" --socket "$work/app.sock" --token-file "$work/app.token" > "$work/xlaggd.out" 2> "$work/xlaggd.log" &
  daemon=$!
  for _ in $(seq 100); do grep -q ready "$work/xlaggd.out" 2>/dev/null && return 0; sleep 0.1; done
  echo "xlaggd did not start:" >&2; cat "$work/xlaggd.log" >&2; exit 1
}
stop_xlaggd() {
  kill -TERM "$daemon"; wait "$daemon" || true; daemon=""
}
partner_counters() {
  printf '  %-6s %12s\n' port rx_packets
  for i in 0 1 2 3; do
    printf '  %-6s %12s\n' "xlp$i" "$(ip netns exec "xl-$id-ptr" cat "/sys/class/net/xlp$i/statistics/rx_packets")"
  done
}

echo "== test bed: xl-$id-{src,app,ptr}, members xlm0..3 <-> partner xlp0..3"
scripts/testbed.sh up "$id" 4

echo "== lagg0: laggproto loadbalance, 4 members, forward mode (xld0 <-> aggregate)"
cat > "$work/forward.toml" <<TOML
[[lagg]]
name = "lagg0"
laggproto = "loadbalance"
laggports = ["xlm0", "xlm1", "xlm2", "xlm3"]
upper = "forward"
forward_port = "xld0"
TOML
start_xlaggd "$work/forward.toml"
echo "== pushing 1000 flows x 20 frames (64 B) from the source namespace"
ip netns exec "xl-$id-src" "$bin/xlagg-bench" send --iface xls0 --flows 1000 --per-flow 20 --pps 50000
sleep 0.5
stop_xlaggd
echo "== xlaggd's per-port counters"
cat "$work/xlaggd.out" | grep -v ready
echo "== the partner's per-port receive counters"
partner_counters

echo "== lagg0 in host mode: failover with 10.77.0.1/24, ping the partner's 10.77.0.2 (bridged)"
scripts/testbed.sh bridge "$id"
cat > "$work/host.toml" <<TOML
[[lagg]]
name = "lagg0"
laggproto = "failover"
laggports = ["xlm0", "xlm1", "xlm2", "xlm3"]
addresses = ["10.77.0.1/24"]
TOML
start_xlaggd "$work/host.toml"
ip -n "xl-$id-app" -br addr show dev lagg0
ip netns exec "xl-$id-app" ping -c 3 -i 0.2 10.77.0.2
echo "== the same lagg, changed at run time with xlaggctl (the ifconfig way)"
ctl() { echo "\$ xlaggctl $*"; "$bin/xlaggctl" --socket "$work/app.sock" "$@"; }
ctl lagg0
ctl lagg0 -laggport xlm3 inet 10.77.0.11/24 alias description "demo uplink"
ctl lagg0 laggproto fastest || echo "   (refused, exit $?; nothing changed)"
ctl -v lagg0
ip netns exec "xl-$id-app" ping -c 2 -i 0.2 10.77.0.2
stop_xlaggd
grep -v ready "$work/xlaggd.out"

echo "== laggproto lacp against a second xlaggd on the partner side (fast timeout)"
ip -n "xl-$id-ptr" link del xlbr0
for side in app ptr; do
  if [ "$side" = app ]; then m=xlm; a=10.77.0.1; else m=xlp; a=10.77.0.2; fi
  cat > "$work/lacp-$side.toml" <<TOML
[[lagg]]
name = "lagg0"
laggproto = "lacp"
laggports = ["${m}0", "${m}1", "${m}2", "${m}3"]
addresses = ["$a/24"]
lacp_fast_timeout = true
TOML
done
ip netns exec "xl-$id-ptr" "$bin/xlaggd" --config "$work/lacp-ptr.toml" --socket "$work/ptr.sock" --http off > "$work/partner.out" 2> "$work/partner.log" &
partner=$!
start_xlaggd "$work/lacp-app.toml"
echo "   waiting for aggregate_wait (2 s) and the exchange that follows"
sleep 3
ip netns exec "xl-$id-app" ping -c 3 -i 0.2 10.77.0.2
stop_xlaggd
kill -TERM "$partner"; wait "$partner" || true; partner=""
grep -v ready "$work/xlaggd.out"
echo "== done; removing the test bed"
