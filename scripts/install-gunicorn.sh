#!/bin/sh
# Makes sure the real-Gunicorn tests have Debian's gunicorn and python3-flask (the tests run
# examples/flask-gunicorn under them; nothing comes from PyPI). Run by `npm test` before the
# suite and by .ci/run. Quiet and idempotent:
# - /usr/bin/python3 imports flask and gunicorn: nothing to do;
# - missing, running as root: installs them with apt-get (output shown only on failure);
# - missing, not root: prints the one command to run and fails, so no test is skipped.
set -eu

PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import flask, gunicorn' 2>/dev/null; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-gunicorn: the Gunicorn tests need Debian's gunicorn and python3-flask; run 'sudo sh scripts/install-gunicorn.sh', then npm test again" >&2
  exit 1
fi
echo "install-gunicorn: installing Debian's gunicorn and python3-flask for the Gunicorn tests (apt-get)" >&2
sh "$(dirname "$0")/apt-install.sh" install-gunicorn \
  "install gunicorn and Flask for /usr/bin/python3, then run npm test again" \
  gunicorn python3 python3-flask
