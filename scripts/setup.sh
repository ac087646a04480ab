#!/usr/bin/env bash
# One-time (and idempotent) set-up: PyTorch, then tracelang with its dev extras, editable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.setup-stamp
want=$(sha256sum pyproject.toml | cut -c1-16)
# The stamp alone is not enough: an editable install can point at another (or a removed) checkout.
here=$(pwd -P)
# The check runs from / so that this checkout's own tracelang/ folder cannot answer for the install.
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && (cd / && $PY -c "
import pathlib, sys, torch, tracelang
sys.exit(pathlib.Path(tracelang.__file__ or '/').resolve().parent.parent != pathlib.Path('$here'))") 2>/dev/null; then
  exit 0
fi
# An unpinned `torch` pulls the CUDA build (several GB). Pinning the version lets pip take a local
# CPU wheel where one is offered (2.13.0+cpu sorts above 2.13.0); elsewhere the same pin gets the
# platform's default build, and an index without it falls back to the newest.
if ! $PY -c "import torch" 2>/dev/null; then
  $PY -m pip install -q "torch==2.13.0" || $PY -m pip install -q torch
fi
$PY -m pip install -q -e ".[dev]"
echo "$want" > "$stamp"
