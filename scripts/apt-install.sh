#!/bin/sh
# Installs Debian packages for the install-*.sh scripts: quiet (apt's output is shown only
# when a step fails), and the package lists are refreshed only when they cannot offer the
# first package yet. Run as root (or under sudo):
#   sh scripts/apt-install.sh NAME HINT PACKAGE...
# NAME prefixes every message; HINT says what to do on a machine without apt-get.
set -eu

NAME="$1"
HINT="$2"
shift 2

if ! command -v apt-get >/dev/null 2>&1; then
  echo "$NAME: no apt-get here; $HINT" >&2
  exit 1
fi

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
export DEBIAN_FRONTEND=noninteractive

run() {
  if ! "$@" >>"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "$NAME: '$*' failed" >&2
    exit 1
  fi
}

if ! apt-cache show "$1" >/dev/null 2>&1; then
  run apt-get update
fi
run apt-get install -y --no-install-recommends "$@"
