#!/bin/sh
# Starts the Flask test backend under Gunicorn (10 workers x 5 threads) in the foreground.
# Uses Debian's python3 and packages, installing them with apt-get when missing.
# Extra arguments go to Gunicorn, e.g. `./run.sh --worker-connections 5`.
set -eu
cd "$(dirname "$0")"

PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c 'import flask, gunicorn' 2>/dev/null; then
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "run.sh: installing gunicorn and python3-flask with apt-get" >&2
  $SUDO apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 gunicorn python3-flask
fi

exec "$PY" -m gunicorn --config gunicorn.conf.py "$@" app:app
