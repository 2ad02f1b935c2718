#!/usr/bin/env bash
# Build the lab's golden image: a Debian bookworm minbase root filesystem, written as a tarball
# that `podman import` turns into localhost/fellesdrift-golden:<recipe hash>.
#
#   usage: build.sh OUTPUT.tar [DEB_CACHE_DIR]
#
# Everything in this folder is the recipe: fellesdrift.lab hashes all of it into the image tag,
# so any edit here yields a new tag and a rebuild. Runs as root (debootstrap, chroot).
# DEB_CACHE_DIR keeps downloaded .debs between builds, so a recipe edit rebuilds without
# fetching the archive again. FELLESDRIFT_DEBIAN_MIRROR overrides the mirror.
set -euo pipefail

out=${1:?usage: build.sh OUTPUT.tar [DEB_CACHE_DIR]}
debcache=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
files=$here/files
mirror=${FELLESDRIFT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm

packages=(
    systemd systemd-sysv dbus openssh-server python3 python3-apt sudo chrony
    unattended-upgrades iproute2 procps ca-certificates iputils-ping
    # What a site needs before its routes exist (the network phase configures them after the
    # first converge): the routers' FRR, the node exporter every host runs, the client tools
    # the site checks use. Everything else is installed by the roles, through the apt proxy.
    frr iperf3 curl prometheus-node-exporter postgresql-client netcat-openbsd bind9-dnsutils
    # acl: Ansible becomes an unprivileged user (postgres) without pipelining only with it.
    acl
)
# Installed but off until a role turns them on.
disabled=(frr.service prometheus-node-exporter.service iperf3.service)

# Units that cannot do anything useful in a container; masked so that
# `systemctl is-system-running` reports `running`, not `degraded`.
masked=(
    getty@.service serial-getty@.service console-getty.service getty.target
    systemd-remount-fs.service systemd-firstboot.service
    sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount
    sys-fs-fuse-connections.mount
)

root=$(mktemp -d /var/tmp/fellesdrift-golden.XXXXXX)
cleanup() {
    # Unmount whatever debootstrap or chroot left mounted before deleting the tree.
    set +e
    findmnt -R -n -l -o TARGET "$root" 2>/dev/null | sort -r | while read -r m; do
        umount -l "$m"
    done
    rm -rf --one-file-system "$root"
}
trap cleanup EXIT

step() { printf '==> %s\n' "$*"; }

step "debootstrap $suite (minbase + ${#packages[@]} packages) from $mirror"
cache_args=()
if [[ -n $debcache ]]; then
    mkdir -p "$debcache"
    cache_args=(--cache-dir="$debcache")
fi
include=$(IFS=,; echo "${packages[*]}")
debootstrap --variant=minbase --merged-usr --components=main "${cache_args[@]}" \
    --include="$include" "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"

step "admin user ops, sudo, sshd, first-boot host keys"
chroot "$root" useradd --create-home --uid 1000 --user-group --groups sudo \
    --shell /bin/bash ops
chroot "$root" passwd --lock ops >/dev/null
install -d -m 0700 -o 1000 -g 1000 "$root/home/ops/.ssh"
install -m 0440 -o 0 -g 0 "$files/sudoers-ops" "$root/etc/sudoers.d/ops"
chroot "$root" visudo -cq -f /etc/sudoers.d/ops
install -m 0644 "$files/sshd-fellesdrift.conf" "$root/etc/ssh/sshd_config.d/fellesdrift.conf"
rm -f "$root"/etc/ssh/ssh_host_*
install -m 0644 "$files/fellesdrift-ssh-hostkeys.service" \
    "$root/etc/systemd/system/fellesdrift-ssh-hostkeys.service"
chroot "$root" systemctl enable --quiet fellesdrift-ssh-hostkeys.service ssh.service
chroot "$root" systemctl mask --quiet "${masked[@]}"
for unit in "${disabled[@]}"; do
    chroot "$root" systemctl disable --quiet "$unit" 2>/dev/null || true
done

step "apt sources, identity files, clean-up"
install -m 0644 "$files/sources.list" "$root/etc/apt/sources.list"
# Empty machine-id: each container gets its own at boot. Podman provides hosts/hostname/resolv.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo localhost >"$root/etc/hostname"
echo LANG=C.UTF-8 >"$root/etc/default/locale"
: >"$root/etc/resolv.conf"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
    "$root"/var/cache/debconf/*-old "$root"/tmp/* "$root"/var/tmp/*

step "tarball $out"
mkdir -p "$(dirname "$out")"
tar --numeric-owner --xattrs --acls --one-file-system -C "$root" -cf "$out.part" .
mv -f "$out.part" "$out"
