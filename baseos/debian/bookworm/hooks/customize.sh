#!/bin/sh
# mmdebstrap customize hook: turns the bootstrapped tree into a kindling base image.
# $1 = root of the tree, $2 = the recipe's overlay directory (copied over the tree).
set -eu
root="$1"
overlay="$2"

cp -a "$overlay/." "$root/"
chmod 0755 "$root/usr/lib/kindling/kindling-boot" "$root/usr/lib/kindling/mmds-get" "$root/usr/lib/systemd/system-generators/kindling-entrypoint-generator"

echo kindling >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tkindling\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t1\n' >"$root/etc/fstab"
: >"$root/etc/resolv.conf"

chroot "$root" systemctl enable systemd-networkd.service systemd-network-generator.service kindling-boot.service
# Timers that would wake a short-lived build VM for nothing.
chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer e2scrub_reap.service

# Host keys made at build time would be shared by every VM of the image: the vmm injects a fresh pair
# per VM (and kindling-boot generates one if it did not).
rm -f "$root"/etc/ssh/ssh_host_*

# No apt caches or logs of the build in the image.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/var/cache/debconf/*-old "$root"/var/log/apt/* "$root"/var/log/dpkg.log "$root"/var/log/alternatives.log
mkdir -p "$root/var/lib/apt/lists/partial"
: >"$root/etc/machine-id"
