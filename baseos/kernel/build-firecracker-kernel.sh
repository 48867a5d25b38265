#!/usr/bin/env bash
# Builds a Firecracker guest kernel (uncompressed ELF vmlinux, no initrd needed) from Debian's
# linux-source package: x86_64_defconfig + the kernel's kvm_guest.config + firecracker-guest.config.
# Debian's own kernel finds Firecracker's virtio-mmio devices only through ACPI (Firecracker >= 1.8);
# this kernel also boots on older releases. A long build (~20-40 min on 2 cores): not part of CI.
#
# Output: OUT/{vmlinux,config,version}, the same layout as a base-OS build's kernel/ directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fragment="$here/firecracker-guest.config"
out="${KINDLING_CACHE_DIR:-/var/cache/kindling}/kernels/firecracker-guest"
work=""
jobs="$(nproc)"
install_deps=1

usage() {
  cat <<USAGE
usage: $(basename "$0") [--out DIR] [--work DIR] [--jobs N] [--no-install]
  --out DIR      where vmlinux, config and version go (default: $out/<kernel release>)
  --work DIR     build directory, kept afterwards (default: a temporary directory, removed)
  --jobs N       parallel make jobs (default: $jobs)
  --no-install   do not apt-get install linux-source and the build tools
USAGE
}

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; out_given=1; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --no-install) install_deps=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [ "$install_deps" = 1 ]; then
  apt-get install -y --no-install-recommends linux-source build-essential bc bison flex \
    libelf-dev libssl-dev dwarves cpio kmod xz-utils
fi

tarball="$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$tarball" ]; then
  echo "no /usr/src/linux-source-*.tar.xz: install Debian's linux-source package (or drop --no-install)" >&2
  exit 1
fi

if [ -z "$work" ]; then
  work="$(mktemp -d /var/tmp/kindling-kernel.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
echo "unpacking $tarball into $work"
tar -xf "$tarball" -C "$work"
src="$(find "$work" -maxdepth 1 -type d -name 'linux-source-*' | head -n 1)"

cd "$src"
make -s x86_64_defconfig
scripts/kconfig/merge_config.sh -m .config kernel/configs/kvm_guest.config "$fragment"
make -s olddefconfig

# Every option of the fragment must have survived olddefconfig (a missing dependency drops it).
missing=0
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*)
      grep -qxF "$line" .config || { echo "kernel config lost $line (check its dependencies)" >&2; missing=1; } ;;
    "# CONFIG_"*" is not set")
      option="${line#\# }"; option="${option%% *}"
      if grep -q "^$option=" .config; then echo "kernel config still sets $option" >&2; missing=1; fi ;;
  esac
done < "$fragment"
[ "$missing" = 0 ] || exit 1

make -j"$jobs" vmlinux
release="$(make -s kernelrelease)"
[ -n "${out_given:-}" ] || out="$out/$release"
install -D -m 0644 vmlinux "$out/vmlinux"
install -m 0644 .config "$out/config"
echo "$release" > "$out/version"
echo "built Firecracker guest kernel $release: $out/vmlinux"
