#!/bin/sh
# mmdebstrap essential hook: runs before the kernel package is installed, so its initrd is
# built once, small (MODULES=list), and with the virtio drivers a microVM boots from.
set -eu
root="$1"
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/etc/initramfs-tools/hooks"
echo 'MODULES=list' >"$root/etc/initramfs-tools/conf.d/kindling-modules"
cat >"$root/etc/initramfs-tools/hooks/kindling-virtio" <<'HOOK'
#!/bin/sh
# Debian's cloud kernel builds virtio-mmio, virtio-blk and ext4 as modules: load them in the initrd.
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
for m in virtio_mmio virtio_pci virtio_blk virtio_net ext4; do
  force_load "$m"
done
HOOK
chmod 0755 "$root/etc/initramfs-tools/hooks/kindling-virtio"
