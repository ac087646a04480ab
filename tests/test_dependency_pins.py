"""The transformers pin in pyproject.toml against what the code needs. This only compares versions:
the floor itself is exercised by scripts/check_transformers_floor.sh, which installs it in a venv and
runs the tests that touch transformers (measured: 4.56.0 fails, 5.0.0 passes)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# The oldest transformers each thing the code relies on works with, and why.
NEEDS = {
    "from_pretrained(dtype=...) (torch_dtype before)": "4.56",
    "LlamaForCausalLM.get_decoder() returns the decoder (None in 4.56); generate() accepts the tokenizer's "
    "token_type_ids": "5.0",
}


def _spec(name: str) -> SpecifierSet:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (dep,) = [d for d in deps if re.match(rf"{name}\b", d)]
    return SpecifierSet(dep[len(name):].split(";")[0].strip())


def test_transformers_floor_covers_what_the_code_uses() -> None:
    spec = _spec("transformers")
    floor = min(Version(s.version) for s in spec if s.operator == ">=")
    assert floor >= max(Version(v) for v in NEEDS.values())
    assert Version("6.0") not in spec  # a major release renames things; pin below it until tested


def test_the_installed_transformers_is_inside_the_pin() -> None:
    import transformers

    assert Version(transformers.__version__) in _spec("transformers")


def test_the_floor_script_runs_existing_tests() -> None:
    script = (ROOT / "scripts" / "check_transformers_floor.sh").read_text()
    named = re.findall(r"tests/\w+\.py", script)
    assert named and all((ROOT / t).is_file() for t in named)
