#!/bin/sh
# The "agent": records how it was started in its data directory, then runs until it is stopped.
set -eu
mode=server
for arg in "$@"; do
  case "$arg" in -dev) mode=dev ;; esac
done
status=$GREETER_DATA_DIR/status
{
  echo "greeter $GREETER_VERSION"
  echo "mode: $mode"
  echo "args: $*"
  echo "user: $(id -un)"
} > "$status"
trap 'echo stopping >> "$status"; exit 0' TERM INT
while :; do sleep 60 & wait $!; done
