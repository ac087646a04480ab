"""Every Python block in README.md runs, on the tiny model: the blocks name the embedded model
(``"embedded"``), and the shipped adapter (``shipped_dir()``); here they get ``"tiny"`` and a LoRA
adapter made on the tiny model. A block that imports an optional package that is not installed
(trl, vllm, ...) is skipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
OPTIONAL = {"trl", "vllm", "lm_eval", "datasets", "wandb"}


def _blocks() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [(text[:m.start()].count("\n") + 1, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory) -> Path:
    from peft import LoraConfig, get_peft_model

    from tracelang.models import load_model

    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(load_model("tiny").model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(out)
    return out


def test_the_readme_has_the_ecosystem_section() -> None:
    assert "## tracelang with transformers / peft / TRL / vLLM / lm-eval" in README.read_text(encoding="utf-8")
    assert len(_blocks()) >= 5


@pytest.mark.parametrize("line,code", _blocks(), ids=[f"README.md:{line}" for line, _ in _blocks()])
def test_readme_python_block_runs(line: int, code: str, tiny_adapter: Path, monkeypatch, capsys,
                                  tmp_path: Path) -> None:
    import tracelang.models.loading as loading

    monkeypatch.chdir(tmp_path)  # what a block writes (a TRL output_dir) stays out of the checkout

    monkeypatch.setattr(loading, "shipped_dir", lambda: tiny_adapter)
    for name in sorted(set(re.findall(r"^\s*(?:from|import) (\w+)", code, re.M)) & OPTIONAL):
        pytest.importorskip(name)
    exec(compile(code.replace('"embedded"', '"tiny"'), f"README.md:{line}", "exec"), {})
    printed = capsys.readouterr().out
    # a block that shows its output in `# ...` comments after print() prints exactly that
    for expected in re.findall(r"print\(.*\)\s+# (\[.*\]|\{.*\})$", code, re.M):
        assert expected in printed, (expected, printed)
