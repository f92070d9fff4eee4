#!/usr/bin/env bash
# Create .venv with jsm-mail installed; with --test also the test tools and the Debian
# packages the tests start as real servers (Dovecot IMAP/POP3, openssl for its certificate).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ "${1:-}" = "--test" ]; then
  need=()
  for cmd in dovecot:dovecot-imapd doveadm:dovecot-core openssl:openssl; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 || need+=("${cmd##*:}")
  done
  dpkg -s dovecot-pop3d >/dev/null 2>&1 || need+=(dovecot-pop3d)
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      dovecot-imapd dovecot-pop3d openssl >/dev/null
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
