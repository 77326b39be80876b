#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then run lint, types and the tests.
#   bash scripts/test.sh [pytest args...]
# Debian packages: mbpoll (independent Modbus client), victoria-metrics (line-protocol server),
# influxdb 1.x (InfluxQL feed source), chromium (browser tests), docker-compose (validates docker/compose.yaml; no Docker engine needed), Pango and poppler-utils (the shift report's PDF and its rendering to PNG). Python: a virtualenv in .venv with the package and its test extra.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mbpoll >/dev/null 2>&1 || need+=(mbpoll)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v influxd >/dev/null 2>&1 || need+=(influxdb)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
for lib in libpango-1.0-0 libpangoft2-1.0-0; do  # WeasyPrint (the shift report's PDF) loads Pango
  dpkg -s "$lib" >/dev/null 2>&1 || need+=("$lib")
done
if ((${#need[@]})); then
  echo "installing Debian packages: ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== import layers"; .venv/bin/lint-imports --no-cache
echo "== pytest"; .venv/bin/python -m pytest "$@"
