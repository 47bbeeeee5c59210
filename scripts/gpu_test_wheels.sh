#!/usr/bin/env bash
# Adds pytest and what it imports, as Python 3.12 wheels, to .whl/ (run after ../shared/gpu/prepare.sh, which empties
# .whl/), so that `bash scripts/gpu_followup.sh tests` can run `pytest -m gpu` on a GPU image without pytest; the GPU
# check installs every wheel of .whl/. Versions: this environment's, which CI installs (run it in the project's venv).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
[ -d .whl ] || { echo "no .whl/ here: run bash ../shared/gpu/prepare.sh first"; exit 1; }
pinned=$(python3 -c "import importlib.metadata as m; print(*(f'{p}=={m.version(p)}' for p in ('pytest', 'pluggy', 'iniconfig', 'pygments')))")
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl $pinned
echo "added to .whl/: $pinned"
