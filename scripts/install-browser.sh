#!/bin/sh
# Makes sure the dashboard browser test has a Chromium to drive (playwright-core; nothing is
# downloaded from outside apt). Run by `npm test` before the suite. Quiet and idempotent:
# - $SLUICE_CHROMIUM (default /usr/bin/chromium) is executable: nothing to do;
# - missing, running as root: installs Debian's chromium with apt-get (its output is shown
#   only when it fails);
# - missing, not root: prints the one command to run and fails, so the test is never
#   skipped silently.
set -eu

CHROMIUM="${SLUICE_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-browser: the dashboard test needs Chromium at $CHROMIUM; run 'sudo sh scripts/install-browser.sh' (Debian/Ubuntu) or set SLUICE_CHROMIUM to a Chromium binary, then run npm test again" >&2
  exit 1
fi
echo "install-browser: installing Debian's chromium for the dashboard test (apt-get, about a minute)" >&2
# A font package keeps the dashboard screenshot legible on minimal images.
sh "$(dirname "$0")/apt-install.sh" install-browser \
  "install Chromium and set SLUICE_CHROMIUM to its binary, then run npm test again" \
  chromium fonts-dejavu-core
if [ ! -x "$CHROMIUM" ]; then
  echo "install-browser: chromium is installed at /usr/bin/chromium, but SLUICE_CHROMIUM points at $CHROMIUM" >&2
  exit 1
fi
