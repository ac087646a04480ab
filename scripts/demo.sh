#!/usr/bin/env bash
# The main job. For now: check every example trace, then run each one.
set -euo pipefail
cd "$(dirname "$0")/.."
tracelang check corpora/examples/*.yaml
for f in corpora/examples/*.yaml; do
  echo "== $f"
  tracelang run "$f"
done
