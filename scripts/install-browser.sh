#!/bin/sh
# Installs Debian's chromium for the dashboard browser test (playwright-core drives it;
# nothing is downloaded from outside apt). Idempotent and quiet: does nothing when
# /usr/bin/chromium is already there; prints apt's output only when it fails.
set -eu

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
export DEBIAN_FRONTEND=noninteractive

run() {
  if ! $SUDO "$@" >>"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "install-browser: '$*' failed" >&2
    exit 1
  fi
}

# Refresh the package lists only when they cannot offer chromium yet.
if ! apt-cache show chromium >/dev/null 2>&1; then
  run apt-get update
fi
# A font package keeps the dashboard screenshot legible on minimal images.
run apt-get install -y --no-install-recommends chromium fonts-dejavu-core
test -x /usr/bin/chromium
