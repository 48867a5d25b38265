#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (as root): install the VM host packages and the npm
# dependencies, then build examples/hello into a microVM image and boot it (`kindling quickstart`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-host-packages.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
exec npx kindling quickstart "$@"
