#!/usr/bin/env bash
# Install the product into .venv and run its main job on embedded defaults: `twin demo` backfills
# 8 days of EMULATED history (readings, events, the plant's orders and shipments), starts the
# emulated PLCs, the collector and the dashboard, and prints the demo's configuration path for the
# other commands. Options pass through, e.g. `scripts/demo.sh --truth examples/truth.toml` (the
# plant runs its hidden truth; the what-ifs' calibration has to find it) or `--days 14`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/twin demo "$@"
