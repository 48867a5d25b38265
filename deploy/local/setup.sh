#!/usr/bin/env bash
# Prepares a fresh Debian 12 host (as root) to run kindling as a service (`npx kindling up`): the VM host
# packages, the npm dependencies, the machine-builds CNI network, a state dir, and the Debian base OS with
# its kernel. Idempotent: each step checks first and prints "ok: <thing> already present" or
# "made: <thing>"; a second run prints only ok lines and changes nothing.
#
#   KINDLING_SETUP_ROOT=DIR   write the CNI config and the state dir under DIR (DIR/etc/cni/conf.d,
#                             DIR/var/lib/kindling) instead of /, e.g. in a test
#   KINDLING_CACHE_DIR=DIR    the kindling cache holding the base OS (default /var/cache/kindling; not
#                             under KINDLING_SETUP_ROOT, so a test reuses the base OS already built)
set -euo pipefail
cd "$(dirname "$0")/../.."

root="${KINDLING_SETUP_ROOT:-}"
cache_dir="${KINDLING_CACHE_DIR:-/var/cache/kindling}"
cni_dir="$root/etc/cni/conf.d"
network=machine-builds
state_dir="$root/var/lib/kindling"

ok() { echo "ok: $1 already present"; }
made() { echo "made: $1"; }
# Runs a command, printing its stdout; its stderr is kept aside and shown only when the command fails.
quiet() {
  local err status=0
  err="$(mktemp)"
  "$@" 2>"$err" || status=$?
  if [ "$status" != 0 ]; then
    echo "deploy/local/setup.sh: $* failed (exit $status):" >&2
    cat "$err" >&2
    rm -f "$err"
    exit 1
  fi
  rm -f "$err"
}

if [ "$(id -u)" != 0 ]; then
  echo "deploy/local/setup.sh: run it as root (sudo bash deploy/local/setup.sh): it installs packages and boots VMs" >&2
  exit 1
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "deploy/local/setup.sh: needs Node.js 20 (>= 20.18) and npm on the PATH" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive # apt-get must not stop for a debconf question whose prompt is not shown

# 1. The VM host packages (scripts/install-host-packages.sh has the list; it installs only what is missing).
packages_state() { dpkg-query -W -f='${Package} ${Version} ${Status}\n' 2>/dev/null | sha256sum; }
before="$(packages_state)"
quiet bash scripts/install-host-packages.sh >/dev/null
if [ "$before" = "$(packages_state)" ]; then ok "VM host packages (scripts/install-host-packages.sh)"; else made "VM host packages (scripts/install-host-packages.sh)"; fi

# 2. The npm dependencies.
if [ -d node_modules ]; then
  ok "node_modules"
else
  quiet npm ci --no-audit --no-fund >/dev/null
  made "node_modules (npm ci)"
fi

# 3. The CNI network VMs join (deploy/cni/machine-builds.conflist; docs/vm-host.md). An existing file is
#    the host's own configuration and is left as it is.
conflist="$cni_dir/$network.conflist"
if [ -f "$conflist" ]; then
  ok "CNI network $network ($conflist)"
else
  # It writes the file before it looks for the plugins, and reports a missing one on stdout (exit 1): on a
  # failure show all it said and remove the file, so that the next run does not take the step as done.
  if ! out="$(npx kindling cni install --dir "$cni_dir" --name "$network" 2>&1)"; then
    rm -f "$conflist"
    echo "deploy/local/setup.sh: npx kindling cni install --dir $cni_dir --name $network failed:" >&2
    printf '%s\n' "$out" >&2
    exit 1
  fi
  made "CNI network $network ($conflist)"
fi

# 4. The state dir of `kindling up`.
if [ -d "$state_dir" ]; then
  ok "state dir $state_dir"
else
  mkdir -p "$state_dir"
  made "state dir $state_dir"
fi

# 5. The Debian base OS and its kernel: `kindling baseos build` returns the cached build when the recipe is
#    unchanged (and says "cached"), and builds it otherwise (mmdebstrap, 1-2 min).
baseos="$(quiet npx kindling baseos build debian/bookworm --cache-dir "$cache_dir")"
dir="$(printf '%s\n' "$baseos" | sed -n 's#^  rootfs   \(.*\)/rootfs\.ext4$#\1#p')"
kernel="$(printf '%s\n' "$baseos" | sed -n 's#^  kernel   \([^:]*\):.*#\1#p')"
what="base OS debian:bookworm and kernel $kernel ($dir)"
if printf '%s\n' "$baseos" | head -n1 | grep -q ' cached in '; then ok "$what"; else made "$what"; fi
