#!/usr/bin/env bash
# The xlagg namespace test bed (see DESIGN.md):
#
#   xl-ID-src            xl-ID-app (the appliance)            xl-ID-ptr (the partner)
#   xls0 <----veth----> xld0 (forward port)
#                        xlm0 .. xlm{N-1} (members) <--veth--> xlp0 .. xlp{N-1}
#                                                             [xlbr0: bridge over xlp*, 10.77.0.2/24,
#                                                              2001:db8:77::2/64, with "bridge"]
#
# Usage:
#   testbed.sh up ID N [bridge]    build it (any earlier bed with the same ID is removed first)
#   testbed.sh bridge ID           add the partner bridge to an existing bed
#   testbed.sh down ID             remove it (idempotent)
#   testbed.sh run ID N [bridge] -- CMD...
#                                  build, run CMD, and remove it whatever CMD does
#   testbed.sh list                the test beds that exist
#
# XL_QUEUES=N gives every veth N transmit and receive queues (default 1), for multi-worker
# laggs.
#
# Names: namespaces xl-ID-{src,app,ptr}; interfaces live only inside them, so beds with
# different IDs never collide. IPv6 is off on the test interfaces so that no stray neighbour
# discovery frames mix with test traffic (xlbr0 keeps it).
set -euo pipefail

die() { echo "testbed: $*" >&2; exit 1; }

ns_names() { echo "xl-$1-src xl-$1-app xl-$1-ptr"; }

down() {
  local id=$1 ns
  for ns in $(ns_names "$id"); do
    if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
      # Deleting the namespace deletes its veths and detaches their XDP programs.
      # Never ourselves: a caller inside the namespace runs this script there too.
      ip netns pids "$ns" 2>/dev/null | grep -vx "$$" | xargs -r kill -TERM 2>/dev/null || true
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
}

quiet_v6() { # ns ifname
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1" >/dev/null 2>&1 || true
}

up() {
  local id=$1 n=$2 bridge=${3:-}
  [[ "$id" =~ ^[A-Za-z0-9]{1,10}$ ]] || die "ID must be 1-10 letters or digits, got '$id'"
  [[ "$n" =~ ^[0-9]+$ ]] && (( n >= 1 && n <= 32 )) || die "N must be 1..32, got '$n'"
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces, veth)"
  down "$id"
  local src="xl-$id-src" app="xl-$id-app" ptr="xl-$id-ptr"
  local queues=${XL_QUEUES:-1}
  [[ "$queues" =~ ^[0-9]+$ ]] && (( queues >= 1 && queues <= 16 )) || die "XL_QUEUES must be 1..16, got '$queues'"
  local q="numtxqueues $queues numrxqueues $queues"
  trap 'down "$id"' ERR
  for ns in "$src" "$app" "$ptr"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  # shellcheck disable=SC2086
  ip -n "$app" link add xld0 $q type veth peer name xls0 $q netns "$src"
  quiet_v6 "$app" xld0; quiet_v6 "$src" xls0
  ip -n "$app" link set xld0 up
  ip -n "$src" link set xls0 up
  local i
  for ((i = 0; i < n; i++)); do
    # shellcheck disable=SC2086
    ip -n "$app" link add "xlm$i" $q type veth peer name "xlp$i" $q netns "$ptr"
    quiet_v6 "$app" "xlm$i"; quiet_v6 "$ptr" "xlp$i"
    ip -n "$app" link set "xlm$i" up
    ip -n "$ptr" link set "xlp$i" up
  done
  [ "$bridge" = bridge ] && add_bridge "$id"
  trap - ERR
}

# A bridge over every partner port with the partner's addresses: one L3 endpoint behind all
# members. It floods like any bridge, so frames sent to it on one member can come back on the
# others (a switch would know they form one aggregate): use it for host-mode tests only.
add_bridge() {
  local ptr="xl-$1-ptr" p
  ip -n "$ptr" link add xlbr0 type bridge
  for p in $(ip -n "$ptr" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^xlp'); do
    ip -n "$ptr" link set "$p" master xlbr0
  done
  ip -n "$ptr" addr add 10.77.0.2/24 dev xlbr0
  ip -n "$ptr" addr add 2001:db8:77::2/64 dev xlbr0 nodad
  ip -n "$ptr" link set xlbr0 up
}

case "${1:-}" in
  up) [ $# -ge 3 ] || die "usage: testbed.sh up ID N [bridge]"; up "$2" "$3" "${4:-}" ;;
  down) [ $# -ge 2 ] || die "usage: testbed.sh down ID"; down "$2" ;;
  bridge) [ $# -ge 2 ] || die "usage: testbed.sh bridge ID"; add_bridge "$2" ;;
  run)
    [ $# -ge 4 ] || die "usage: testbed.sh run ID N [bridge] -- CMD..."
    id=$2 n=$3; shift 3
    bridge=""
    if [ "${1:-}" = bridge ]; then bridge=bridge; shift; fi
    [ "${1:-}" = "--" ] && shift
    trap 'down "$id"' EXIT INT TERM
    up "$id" "$n" "$bridge"
    "$@"
    ;;
  list) ip netns list | awk '{print $1}' | grep -E '^xl-[A-Za-z0-9]+-(src|app|ptr|net)$' || true ;;
  *) die "usage: testbed.sh up ID N [bridge] | bridge ID | down ID | run ID N [bridge] -- CMD... | list" ;;
esac
