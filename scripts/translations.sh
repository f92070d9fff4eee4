#!/usr/bin/env bash
# Refresh the admin pages' message catalogs after text changed: extract, merge into each
# language's .po (translate the new entries there), compile the .mo files the service loads.
set -euo pipefail
cd "$(dirname "$0")/.."
pot=$(mktemp --suffix=.pot)
trap 'rm -f "$pot"' EXIT
.venv/bin/pybabel extract -F babel.cfg -o "$pot" plugin
.venv/bin/pybabel update -w 120 -i "$pot" -d plugin/web/translations
.venv/bin/pybabel compile -d plugin/web/translations
