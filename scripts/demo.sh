#!/usr/bin/env bash
# Install the product into .venv and run its main job on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/twin demo "$@"
