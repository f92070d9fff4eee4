#!/usr/bin/env bash
# Create .venv with jsm-mail installed; with --test also the test tools and the Debian
# packages the tests start as real servers (Dovecot IMAP/POP3, openssl for its certificate, PostgreSQL)
# and the browser the admin-page tests drive (Chromium and chromedriver).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ "${1:-}" = "--test" ]; then
  need=()
  for cmd in dovecot:dovecot-imapd doveadm:dovecot-core openssl:openssl; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 || need+=("${cmd##*:}")
  done
  dpkg -s dovecot-pop3d >/dev/null 2>&1 || need+=(dovecot-pop3d)
  # Debian keeps initdb and pg_ctl out of PATH, in /usr/lib/postgresql/<version>/bin.
  command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
  # The admin pages' browser tests drive Debian's Chromium through its chromedriver; a Japanese
  # font keeps the screenshots of the Japanese pages legible.
  for cmd in chromium:chromium chromedriver:chromium-driver; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 || need+=("${cmd##*:}")
  done
  dpkg -s fonts-ipafont-gothic >/dev/null 2>&1 || need+=(fonts-ipafont-gothic)
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${need[@]}" >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    # Debian's own python3 ships venv separately.
    rm -rf .venv
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    "$PYTHON" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi

if [ "${1:-}" = "--test" ]; then
  # The Forge app: its pages' script is bundled (forge-ui), and manifest.yml is checked with
  # Atlassian's own rules (tools/forge-check); both need Node.js, which the Python suite does not.
  if command -v npm >/dev/null 2>&1; then
    (cd forge-ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
    (cd tools/forge-check && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "setup: npm not found: the Forge pages are not built and manifest.yml is not checked" >&2
  fi
fi
