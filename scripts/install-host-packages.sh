#!/usr/bin/env bash
# Debian packages kindling needs on a VM host and in its tests (run as root).
set -euo pipefail
packages=(
  nats-server openssh-server openssh-client
  qemu-system-x86 mmdebstrap e2fsprogs containernetworking-plugins iproute2 iptables
  lz4 zstd xz-utils bzip2 git ca-certificates openssl jq procps b3sum
)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
mkdir -p /run/sshd
echo "host packages present: ${packages[*]}"
