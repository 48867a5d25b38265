#!/bin/sh
# docker-consul's entrypoint pattern: flags alone mean "agent <flags>"; the agent runs as the
# unprivileged user, with its data directory owned by it; any other command runs as given.
set -eu
if [ "${1#-}" != "${1:-}" ]; then
  set -- agent "$@"
fi
if [ "${1:-}" = agent ]; then
  shift
  mkdir -p "$GREETER_DATA_DIR"
  chown greeter:greeter "$GREETER_DATA_DIR"
  # setpriv (util-linux, in every Debian) plays su-exec's part.
  exec setpriv --reuid=greeter --regid=greeter --init-groups greeter-agent "$@"
fi
exec "$@"
