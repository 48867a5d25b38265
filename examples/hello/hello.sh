#!/bin/sh
# The example's entrypoint: records who and where it runs, then stays up until it is told to stop.
set -eu
interval=60
while [ $# -gt 0 ]; do
  case "$1" in
    --interval) interval="$2"; shift 2 ;;
    *) shift ;;
  esac
done
{
  echo "greeting: ${GREETING:-unset}"
  echo "user: $(id -un) uid=$(id -u)"
  echo "workdir: $(pwd)"
  echo "args: --interval ${interval}"
} > "${APP_HOME}/status.txt"
trap 'echo "stopping" >> "${APP_HOME}/status.txt"; exit 0' TERM INT
while :; do sleep "$interval" & wait $!; done
