#!/usr/bin/env bash
# Set up and start the service in demo mode (no Jira configured: dry-run Jira, sample mails).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/jsm-mail serve "$@"
