#!/usr/bin/env bash
# Runs the tests that touch transformers against the LOWEST transformers pyproject.toml allows.
#
# A venv with --system-site-packages: torch, peft, accelerate and the rest come from the current
# environment; only transformers (at the floor) and what it pins (huggingface_hub, tokenizers,
# kernels through the hub-kernels extra) are installed into the venv, which needs PyPI. So this
# checks the transformers floor, not the floors of the other dependencies.
#
#   scripts/check_transformers_floor.sh            # the floor from pyproject.toml
#   scripts/check_transformers_floor.sh 4.56.0     # any other version, e.g. to find a floor
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
floor=${1:-$("$PY" - <<'PYEOF'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
spec = next(d for d in deps if re.match(r"transformers\b", d))
print(re.search(r">=\s*([0-9][0-9.]*)", spec).group(1))
PYEOF
)}
venv=${VENV:-${TMPDIR:-/tmp}/tracelang-transformers-$floor}
[ -x "$venv/bin/python" ] || "$PY" -m venv --system-site-packages "$venv"
"$venv/bin/pip" install -q "transformers[hub-kernels]==$floor"
"$venv/bin/python" -c "import transformers; print('transformers', transformers.__version__)"
PYTHONPATH=$PWD "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  tests/test_models_loading.py tests/test_decoding_generate.py tests/test_decoding_attention.py \
  tests/test_training_lora.py tests/test_training_rl.py tests/test_integrations.py "${@:2}"
