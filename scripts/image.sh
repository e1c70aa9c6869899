#!/usr/bin/env bash
# Builds a bootable disk image of the xlagg appliance: Debian bookworm (minimal, systemd) with
# the Linux kernel of bookworm-backports, xlaggd and xlaggctl with their unit, a console status
# line per lagg after start, and the laggs of a configuration given here.
#
#   scripts/image.sh --config FILE.toml  [--out PATH] [--size MB] [--ssh KEYFILE] [--token FILE]
#                    [--refresh-base]
#   scripts/image.sh --rcconf rc.conf    [...]      (ifconfig_laggN lines, through xlaggctl import)
#
# The image: a GPT disk with an EFI system partition (systemd-boot, the kernel and its
# initramfs) and an ext4 root; it boots with UEFI (OVMF in a VM). Serial console on ttyS0
# (115200) and the screen; network interfaces named eth0, eth1, ... in the order the kernel
# finds them (net.ifnames=0; with one NIC driver that is PCI order), so a configuration can
# name them before the box exists. No password
# login: root is locked; SSH only with --ssh (the key file becomes root's authorized_keys).
# --token FILE: the HTTP API's token (one line, at least 32 characters) for changes through the
# API and the web UI; without it the box makes its own on first start, which only someone on
# the box can read.
#
# Why this kernel: xlagg needs native XDP on virtio-net and the common NIC drivers, AF_XDP
# with need_wakeup and XDP on veth; those are in 6.1 (bookworm), but AF_XDP multi-buffer and
# xdp.frags programs (jumbo frames) need 6.6 or later, so the image takes bookworm-backports'
# 6.12 LTS kernel, the newest Debian ships for bookworm.
#
# Idempotent and cached: the Debian root file system is built once per package list
# (target/image/cache); later runs only add the binaries and the configuration and assemble
# the disk (under a minute). The log says when the cached root was built; --refresh-base
# builds it anew with today's packages (kernel and security fixes). No loop devices: the file
# systems are made from directories.
set -euo pipefail

CONFIG="" RCCONF="" OUT="target/image/xlagg.img" SIZE_MB=1536 SSH_KEY="" TOKEN="" REFRESH=""
while [ $# -gt 0 ]; do
  case "$1" in
    --config) CONFIG=$2; shift 2 ;;
    --rcconf) RCCONF=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --size) SIZE_MB=$2; shift 2 ;;
    --ssh) SSH_KEY=$2; shift 2 ;;
    --token) TOKEN=$2; shift 2 ;;
    --refresh-base) REFRESH=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "image: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
# Paths as given, from where the script was started.
for v in CONFIG RCCONF OUT SSH_KEY TOKEN; do
  if [ -n "${!v}" ]; then printf -v "$v" '%s' "$(realpath -m "${!v}")"; fi
done
cd "$(dirname "$0")/.."
die() { echo "image: $*" >&2; exit 1; }
log() { printf 'image: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || die "needs root (the root file system keeps root-owned files)"
if [ -n "$CONFIG" ] && [ -n "$RCCONF" ]; then die "give --config or --rcconf, not both"; fi
[ -z "$CONFIG" ] || [ -f "$CONFIG" ] || die "--config $CONFIG: no such file"
[ -z "$RCCONF" ] || [ -f "$RCCONF" ] || die "--rcconf $RCCONF: no such file"
[ -z "$SSH_KEY" ] || [ -f "$SSH_KEY" ] || die "--ssh $SSH_KEY: no such file"
if [ -n "$TOKEN" ]; then
  [ -f "$TOKEN" ] || die "--token $TOKEN: no such file"
  token_text=$(head -n1 "$TOKEN" | tr -d '[:space:]')
  [ "${#token_text}" -ge 32 ] || die "--token $TOKEN: the token must be at least 32 characters (e.g. openssl rand -hex 32)"
fi
[[ "$SIZE_MB" =~ ^[0-9]+$ ]] && (( SIZE_MB >= 768 )) || die "--size must be at least 768 (MB)"

scripts/setup.sh
started=$(date +%s)

log "building xlaggd and xlaggctl (release)"
cargo build --release --locked -q -p xlagg-control --bin xlaggd --bin xlaggctl
BIN=target/release

# The configuration the appliance starts with, checked here with the same validator.
work=$(mktemp -d /tmp/xlagg-image.XXXXXX)
base=""
# Nothing half-made is left behind: the work directory, a partial disk, a partial cache.
trap 'rm -rf "$work" "$OUT.part" ${base:+"$base.part"}' EXIT
if [ -n "$RCCONF" ]; then
  "$BIN/xlaggctl" import "$RCCONF" > "$work/xlagg.toml" || die "$RCCONF could not be imported (see above)"
elif [ -n "$CONFIG" ]; then
  cp "$CONFIG" "$work/xlagg.toml"
else
  printf '# No laggs yet: add them with xlaggctl or the web UI.\n' > "$work/xlagg.toml"
fi
# (The NICs it names are the image's, not this machine's: only missing devices are accepted.)
# In an empty network namespace: this machine's own NICs of the same names do not count.
if ! unshare --net "$BIN/xlaggd" --config "$work/xlagg.toml" --check --socket "$work/check.sock" >"$work/check.out" 2>"$work/check.err"; then
  grep -q "no network interface named" "$work/check.err" || { cat "$work/check.err" >&2; die "the configuration is invalid"; }
fi
# The management plane never stops the laggs: a listener that cannot start here (an address,
# a TLS file or a token path of the appliance's) is said, not refused; the appliance retries it.
if grep -q "HTTP listener" "$work/check.out"; then
  log "note: $(grep "HTTP listener" "$work/check.out") (checked here in an empty network namespace)"
fi

if [ -n "$TOKEN" ] && grep -Eq '^[[:space:]]*token_file[[:space:]]*=' "$work/xlagg.toml"; then
  die "--token puts the token at the default daemon.token_file: leave token_file out of the configuration"
fi

# The Debian root, cached by package list.
PACKAGES="systemd,systemd-sysv,udev,kmod,iproute2,ethtool,dhcpcd-base,iputils-ping,procps,systemd-boot-efi,initramfs-tools,zstd"
[ -n "$SSH_KEY" ] && PACKAGES="$PACKAGES,openssh-server"
KERNEL_SUITE=bookworm-backports
key=$(printf '%s %s v1' "$PACKAGES" "$KERNEL_SUITE" | sha256sum | cut -c1-16)
cache=target/image/cache
mkdir -p "$cache"
base="$cache/rootfs-$key.tar"
if [ -n "$REFRESH" ] && [ -s "$base" ]; then
  log "--refresh-base: building the Debian root file system anew"
  rm -f "$base"
fi
if [ ! -s "$base" ]; then
  log "building the Debian root file system (once per package list; a few minutes)"
  rm -rf "$base.part"
  mmdebstrap --variant=minbase --format=tar --include="$PACKAGES" \
    --customize-hook="chroot \"\$1\" apt-get install -y -qq --no-install-recommends -t $KERNEL_SUITE linux-image-amd64" \
    --customize-hook='chroot "$1" apt-get clean' \
    bookworm "$base.part" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" \
    "deb http://deb.debian.org/debian $KERNEL_SUITE main"
  mv "$base.part" "$base"
else
  built=$(date -r "$base" +%F)
  age=$(( ($(date +%s) - $(date -r "$base" +%s)) / 86400 ))
  log "Debian root file system from the cache ($base, built $built, $age days ago; --refresh-base rebuilds it with today's packages)"
  if [ "$age" -gt 30 ]; then
    log "warning: the cached root is over 30 days old: its kernel and packages miss the fixes since; consider --refresh-base"
  fi
fi

rootfs="$work/root"
mkdir "$rootfs"
tar -C "$rootfs" --numeric-owner --xattrs --xattrs-include='*' -xpf "$base"

# xlagg itself.
install -m 0755 "$BIN/xlaggd" "$BIN/xlaggctl" "$rootfs/usr/local/sbin/"
install -d -m 0755 "$rootfs/etc/xlagg"
install -m 0644 "$work/xlagg.toml" "$rootfs/etc/xlagg/xlagg.toml"
install -m 0644 dist/xlaggd.service "$rootfs/etc/systemd/system/xlaggd.service"
cat > "$rootfs/etc/systemd/system/xlagg-console.service" <<'EOF'
# A status line per lagg on the console once xlaggd is ready, so a person at the serial
# console sees the box forwarding.
[Unit]
Description=xlagg status on the console
After=xlaggd.service
Requires=xlaggd.service

[Service]
Type=simple
# At once, and again when LACP and the monitors had time to settle (not holding up the boot).
ExecStart=/bin/sh -c '/usr/local/sbin/xlaggctl brief; sleep 15; exec /usr/local/sbin/xlaggctl brief'
StandardOutput=tty
TTYPath=/dev/console

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$rootfs/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/xlaggd.service "$rootfs/etc/systemd/system/multi-user.target.wants/xlaggd.service"
# xlaggd's log on the console too: a person there sees members, failovers and faults.
install -d "$rootfs/etc/systemd/system/xlaggd.service.d"
printf '[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n' \
  > "$rootfs/etc/systemd/system/xlaggd.service.d/console.conf"
ln -sf /etc/systemd/system/xlagg-console.service "$rootfs/etc/systemd/system/multi-user.target.wants/xlagg-console.service"
echo xlagg > "$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\txlagg\n' > "$rootfs/etc/hosts"
printf 'LABEL=xlagg-root\t/\text4\terrors=remount-ro\t0\t1\n' > "$rootfs/etc/fstab"
# No password login; SSH only when asked for, with a key.
chroot "$rootfs" passwd -l root >/dev/null
# Host keys are made on each box's first boot, never shared through the cached root.
rm -f "$rootfs"/etc/ssh/ssh_host_*
if [ -n "$SSH_KEY" ]; then
  cat > "$rootfs/etc/systemd/system/xlagg-ssh-keys.service" <<'EOF'
[Unit]
Description=SSH host keys of this box, made on its first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
EOF
  ln -sf /etc/systemd/system/xlagg-ssh-keys.service "$rootfs/etc/systemd/system/multi-user.target.wants/xlagg-ssh-keys.service"
  install -d -m 0700 "$rootfs/root/.ssh"
  install -m 0600 "$SSH_KEY" "$rootfs/root/.ssh/authorized_keys"
  printf 'PasswordAuthentication no\nPermitRootLogin prohibit-password\n' > "$rootfs/etc/ssh/sshd_config.d/xlagg.conf"
else
  rm -f "$rootfs/etc/systemd/system/multi-user.target.wants/ssh.service" "$rootfs/etc/systemd/system/sshd.service"
fi
# The API token, when given (the daemon reads it from daemon.token_file's default place).
if [ -n "$TOKEN" ]; then
  install -d -m 0700 "$rootfs/var/lib/xlagg"
  (umask 077; printf '%s\n' "$token_text" > "$rootfs/var/lib/xlagg/api-token")
else
  log "no --token: API and web UI changes need the token the box makes on first start (/var/lib/xlagg/api-token there)"
fi
# Nothing else configures the network: the laggs are xlaggd's.
rm -f "$rootfs/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"

# The EFI system partition: systemd-boot, the kernel, its initramfs.
vmlinuz=$(ls "$rootfs"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$rootfs"/boot/initrd.img-* | sort -V | tail -1)
kver=${vmlinuz##*/vmlinuz-}
esp="$work/esp.img"
ESP_MB=128
mkfs.vfat -n XLAGG-ESP -C "$esp" $((ESP_MB * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries ::/xlagg
mcopy -i "$esp" "$rootfs/usr/lib/systemd/boot/efi/systemd-bootx64.efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$vmlinuz" ::/xlagg/vmlinuz
mcopy -i "$esp" "$initrd" ::/xlagg/initrd.img
# No boot menu and no editor: the kernel command line cannot be changed from the console
# (init=/bin/sh would be a root shell on a box whose root is locked).
printf 'default xlagg.conf\ntimeout 0\nconsole-mode keep\neditor no\n' > "$work/loader.conf"
cat > "$work/xlagg.conf" <<EOF
title   xlagg ($kver)
linux   /xlagg/vmlinuz
initrd  /xlagg/initrd.img
options root=LABEL=xlagg-root ro net.ifnames=0 console=tty0 console=ttyS0,115200 panic=10
EOF
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$esp" "$work/xlagg.conf" ::/loader/entries/xlagg.conf

# The root file system, made from the directory.
root_mb=$((SIZE_MB - ESP_MB - 2))
rootimg="$work/root.img"
mkfs.ext4 -q -L xlagg-root -d "$rootfs" "$rootimg" "${root_mb}M"

# The disk: GPT, ESP at 1 MiB, root after it.
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT.part"
truncate -s "${SIZE_MB}M" "$OUT.part"
sgdisk -n "1:2048:+${ESP_MB}M" -t 1:ef00 -c 1:xlagg-esp \
  -n "2:$((2048 + ESP_MB * 2048)):+${root_mb}M" -t 2:8304 -c 2:xlagg-root "$OUT.part" > /dev/null
dd if="$esp" of="$OUT.part" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$rootimg" of="$OUT.part" bs=1M seek=$((1 + ESP_MB)) conv=notrunc,sparse status=none
mv "$OUT.part" "$OUT"
echo "image: $OUT ($(du -h --apparent-size "$OUT" | cut -f1), $(du -h "$OUT" | cut -f1) on disk; kernel $kver; $(( $(date +%s) - started )) s)"
