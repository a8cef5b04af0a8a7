#!/bin/sh
# Installs Debian's redis-server for the scale-out tests (they run a real Redis; nothing
# is downloaded from outside apt). Idempotent and quiet: does nothing when redis-server is
# already on the PATH; prints apt's output only when it fails. The tests start their own
# server on a free loopback port (scripts/test-redis.mjs), so the system service is not
# needed and is left as Debian configures it.
set -eu

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

$SUDO sh "$(dirname "$0")/apt-install.sh" install-redis \
  "install redis-server, then run the tests again" \
  redis-server
command -v redis-server >/dev/null
