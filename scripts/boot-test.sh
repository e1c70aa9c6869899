#!/usr/bin/env bash
# Boots the appliance image in QEMU with four network interfaces (three virtio-net, one
# emulated Intel e1000e, which has no native XDP: the generic-mode fallback) on tap devices in
# a network namespace, where a second xlaggd is the LACP partner, and checks from outside with
# no step inside the VM:
#   - the console prints the status line once xlaggd is ready;
#   - LACP is negotiated on all four links (the partner sees each one distributing);
#   - ping across lagg0, and the HTTP API answers through it;
#   - a link taken down on the host side (QEMU's set_link) fails over, pings go on;
#   - a reset of the VM comes back the same way.
# Prints boot-to-forwarding, LACP and failover times, and whether QEMU ran with KVM or TCG.
#
#   scripts/boot-test.sh [--image PATH]     (default: builds one with scripts/image.sh)
#
# Bounded: every wait has a deadline (TCG boots take longest); everything it creates (the
# namespace, taps, QEMU, the partner) is removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMAGE=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "boot-test: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
die() { echo "boot-test: FAILED: $*" >&2; exit 1; }
log() { printf 'boot-test: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || die "needs root (network namespace, taps)"

ID="bt$$"
NS="xl-$ID-net"
DIR=$(mktemp -d "/tmp/xlagg-$ID.XXXXXX")
QEMU_PID="" PARTNER_PID="" MON_PID="" pinger=""
cleanup() {
  [ -n "$pinger" ] && kill "$pinger" 2>/dev/null || true
  [ -n "$MON_PID" ] && kill "$MON_PID" 2>/dev/null || true
  [ -n "$PARTNER_PID" ] && kill "$PARTNER_PID" 2>/dev/null && wait "$PARTNER_PID" 2>/dev/null || true
  [ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null && wait "$QEMU_PID" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  if [ -n "${KEEP_LOGS:-}" ]; then echo "boot-test: logs kept in $DIR" >&2; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
fail() {
  echo "boot-test: FAILED: $*" >&2
  echo "--- console (last 40 lines) ---" >&2; tail -40 "$DIR/console.log" >&2 || true
  echo "--- partner ---" >&2; tail -20 "$DIR/partner.log" >&2 || true
  exit 1
}

if [ -z "$IMAGE" ]; then
  cat > "$DIR/xlagg.toml" <<'EOF'
# The boot test's appliance: LACP over all four NICs, an address, the API on every address.
[daemon]
http = "0.0.0.0:8474"

[[lagg]]
name = "lagg0"
description = "boot test"
laggproto = "lacp"
laggports = ["eth0", "eth1", "eth2", "eth3"]
addresses = ["10.78.0.1/24"]
lacp_fast_timeout = true
EOF
  IMAGE="$DIR/xlagg.img"
  scripts/image.sh --config "$DIR/xlagg.toml" --out "$IMAGE"
fi
[ -f "$IMAGE" ] || die "no image at $IMAGE"
cargo build --release --locked -q -p xlagg-control --bin xlaggd --bin xlaggctl
BIN=$(pwd)/target/release

# The partner's side: a namespace with one tap per VM NIC.
ip netns add "$NS"
ip -n "$NS" link set lo up
for i in 0 1 2 3; do
  ip -n "$NS" tuntap add dev "xlqt$i" mode tap
  ip -n "$NS" link set "xlqt$i" up
done

# KVM where it works (nested KVM can open /dev/kvm and still fail in the firmware: it is tried
# on the firmware for a few seconds), TCG otherwise; XLAGG_BOOT_ACCEL=tcg forces TCG.
ACCEL=tcg CPU=max
if [ -w /dev/kvm ] && [ "${XLAGG_BOOT_ACCEL:-}" != tcg ]; then
  cp /usr/share/OVMF/OVMF_VARS_4M.fd "$DIR/probe-vars.fd"
  rc=0
  timeout 4 qemu-system-x86_64 -machine q35,accel=kvm -cpu host -m 256 -display none \
    -no-user-config -nodefaults \
    -drive "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd" \
    -drive "if=pflash,format=raw,file=$DIR/probe-vars.fd" < /dev/null > "$DIR/kvm-probe.log" 2>&1 || rc=$?
  if [ "$rc" = 124 ] && ! grep -q "internal error" "$DIR/kvm-probe.log"; then ACCEL=kvm CPU=host; fi
fi
cp /usr/share/OVMF/OVMF_VARS_4M.fd "$DIR/vars.fd"
nics=()
for i in 0 1 2 3; do
  model=virtio-net-pci
  [ "$i" = 3 ] && model=e1000e
  nics+=(-netdev "tap,id=n$i,ifname=xlqt$i,script=no,downscript=no"
         -device "$model,netdev=n$i,mac=52:54:00:78:00:1$i")
done
log "booting $IMAGE with $ACCEL"
mkfifo "$DIR/monitor.in" "$DIR/monitor.out"
boot_start=$(date +%s.%N)
ip netns exec "$NS" qemu-system-x86_64 -machine "q35,accel=$ACCEL" -cpu "$CPU" -m 1024 -smp 2 \
  -display none -no-user-config -nodefaults \
  -serial "file:$DIR/console.log" -monitor "pipe:$DIR/monitor" \
  -drive "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd" \
  -drive "if=pflash,format=raw,file=$DIR/vars.fd" \
  -drive "file=$IMAGE,format=raw,if=virtio,snapshot=on" \
  "${nics[@]}" > "$DIR/qemu.log" 2>&1 &
QEMU_PID=$!
# The monitor's pipes opened read-write: neither end blocks, even if QEMU is gone.
exec 3<>"$DIR/monitor.in"
cat <>"$DIR/monitor.out" > "$DIR/monitor.log" &
MON_PID=$!
monitor() { echo "$1" >&3; sleep 0.3; }

# The partner: a second xlaggd, LACP over the four taps.
cat > "$DIR/partner.toml" <<'EOF'
[daemon]
http = ""

[[lagg]]
name = "lagg0"
laggproto = "lacp"
laggports = ["xlqt0", "xlqt1", "xlqt2", "xlqt3"]
addresses = ["10.78.0.2/24"]
lacp_fast_timeout = true
EOF
ip netns exec "$NS" "$BIN/xlaggd" --config "$DIR/partner.toml" --socket "$DIR/partner.sock" \
  --token-file "$DIR/partner.token" > "$DIR/partner.log" 2>&1 &
PARTNER_PID=$!
partner_ctl() { ip netns exec "$NS" "$BIN/xlaggctl" --socket "$DIR/partner.sock" "$@"; }
distributing() { # how many partner ports distribute
  partner_ctl -j 2>/dev/null | jq '[.[0].ports[] | select(.flags | index("DISTRIBUTING"))] | length'
}
now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.1f", $1 - $2}'; }
wait_for() { # seconds what command...
  local secs=$1 what=$2; shift 2
  local until=$(( $(date +%s) + secs ))
  while ! "$@" >/dev/null 2>&1; do
    kill -0 "$QEMU_PID" 2>/dev/null || fail "QEMU exited while waiting for $what ($(tail -3 "$DIR/qemu.log"))"
    [ "$(date +%s)" -lt "$until" ] || fail "no $what within $secs s"
    sleep 0.2
  done
}
pings() { ip netns exec "$NS" ping -c 1 -W 1 10.78.0.1; }
console_has() { grep -q "$1" "$DIR/console.log"; }
# TCG boots a full Debian in a few minutes on these machines; KVM in seconds.
LIMIT=$([ "$ACCEL" = kvm ] && echo 120 || echo 420)

wait_for "$LIMIT" "console status line" console_has "xlagg: lagg0: running lacp"
ready=$(since "$boot_start")
wait_for 60 "ping across lagg0" pings
forwarding=$(since "$boot_start")
all_four() { [ "$(distributing)" -ge 4 ]; }
wait_for 60 "LACP distributing on all four links" all_four
lacp=$(since "$boot_start")
# The console's second line, once LACP settled, shows every port active.
wait_for 60 "the console line with all four ports active" console_has "lagg0: running lacp, 4 of 4 ports active"
line=$(grep -a "4 of 4 ports active" "$DIR/console.log" | tail -1 | tr -d '\r')
log "console: $line"
api=$(ip netns exec "$NS" curl -s --max-time 5 http://10.78.0.1:8474/api/v1/laggs) || fail "the HTTP API did not answer through lagg0"
echo "$api" | grep -q '"state":"running"' || fail "the API answered, without a running lagg0: $api"

# Failover: the first NIC's link goes down on the host side while pings run every 10 ms.
ip netns exec "$NS" ping -i 0.01 -c 500 -W 1 10.78.0.1 > "$DIR/failover-ping.log" 2>&1 &
pinger=$!
sleep 1
monitor "set_link n0 off"
t0=$(now)
three() { [ "$(distributing)" -le 3 ]; }
wait_for 20 "the partner taking xlqt0 out" three
out_after=$(since "$t0")
wait "$pinger" || true
pinger=""
lost=$(awk -F', ' '/packets transmitted/ {split($1,a," "); split($2,b," "); print a[1]-b[1]}' "$DIR/failover-ping.log")
# The VM drops the link at once; the partner keeps sending on it until LACP times out (fast:
# 3 s), so at most about 3 s of pings may go.
[[ "$lost" =~ ^[0-9]+$ ]] || fail "the failover pings did not run: $(cat "$DIR/failover-ping.log")"
[ "$lost" -le 350 ] || fail "$lost of 500 pings lost over the failover (more than 3.5 s)"
pings || fail "no ping after the failover"
monitor "set_link n0 on"
wait_for 30 "xlqt0 distributing again" all_four

# A reset: the box comes back by itself.
before=$(grep -ac "xlagg: lagg0: running" "$DIR/console.log" || true)
monitor "system_reset"
t1=$(now)
again() { [ "$(grep -ac "xlagg: lagg0: running" "$DIR/console.log")" -gt "$before" ]; }
wait_for "$LIMIT" "the console status line after the reset" again
sleep 1
wait_for 60 "ping after the reset" pings
reset_forwarding=$(since "$t1")
wait_for 60 "LACP on all four links after the reset" all_four

generic=$(grep -a "running in generic mode" "$DIR/console.log" | grep -o 'port="\?[a-z0-9]*' | tr -d '"' | sort -u | tr '\n' ' ' || true)
echo "boot-test: passed ($ACCEL): console ready ${ready} s, forwarding ${forwarding} s, LACP on 4 links ${lacp} s after power-on;" \
  "failover: partner took the link out after ${out_after} s, ${lost:-?} of 500 pings (10 ms apart) lost;" \
  "reset to forwarding ${reset_forwarding} s"
echo "boot-test: XDP in generic mode (no native XDP in the driver): ${generic:-none}"
exit 0
