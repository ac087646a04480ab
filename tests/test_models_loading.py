"""Model loading: dtypes, and the embedded model's safetensors cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tracelang.models import ModelError, load_model
from tracelang.models.loading import drop_quantization_config, resolve_dtype


def test_auto_dtype_follows_the_hardware() -> None:
    assert resolve_dtype("float32") == "float32" and resolve_dtype("bfloat16") == "bfloat16"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_dtype("auto") == ("bfloat16" if native else "float32")
    assert resolve_dtype("auto", "mps") == "float32"
    with pytest.raises(ModelError, match="unknown dtype"):
        resolve_dtype("fp8")
    assert load_model("tiny", dtype="bfloat16").model.dtype == torch.bfloat16
    assert load_model("tiny").model.dtype == torch.float32


def test_a_cache_keeps_no_gguf_quantization_config(tmp_path: Path) -> None:
    config = {"model_type": "gemma3_text", "hidden_size": 640,
              "quantization_config": {"quant_method": "gguf", "dequantize": False}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    drop_quantization_config(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text()) == {"model_type": "gemma3_text", "hidden_size": 640}
    drop_quantization_config(tmp_path)  # nothing to drop: the file stays as it is
    assert json.loads((tmp_path / "config.json").read_text())["hidden_size"] == 640
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_devices_resolve_and_refuse_clearly() -> None:
    import torch

    from tracelang.models.loading import resolve_device

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("CPU") == "cpu"
    with pytest.raises(ModelError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="no CUDA GPU"):
            resolve_device("cuda:0")


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_the_tiny_model_decodes_on_cuda() -> None:
    from tracelang.decoding.generate import generate
    from tracelang.models import load_model

    loaded = load_model("tiny", device="cuda", dtype="auto")
    (out,) = generate(loaded.model, loaded.tokenizer, ["expert:"], None, max_new_tokens=4)
    assert next(loaded.model.parameters()).device.type == "cuda" and len(out.token_ids) == 4


def test_device_usage_errors_are_one_line(runner, tmp_path) -> None:
    from tracelang.cli import app

    for args in (["solve", "x?", "--device", "tpu"], ["eval", "--device", "tpu", "--out", str(tmp_path / "e")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "--device: unknown device 'tpu'" in result.output
        assert "Traceback" not in result.output


def test_attention_implementation_reaches_the_model() -> None:
    assert load_model("tiny", attn_implementation="eager").model.config._attn_implementation == "eager"
    assert load_model("tiny", attn_implementation="sdpa").model.config._attn_implementation == "sdpa"
    with pytest.raises(ModelError, match="attention implementation 'bogus'"):
        load_model("tiny", attn_implementation="bogus")


def test_revision_is_refused_for_models_built_here() -> None:
    with pytest.raises(ModelError, match="--revision: 'tiny' is not a hub model"):
        load_model("tiny", revision="v1")


_HUB_SCRIPT = """
import sys
from tracelang.models import load_model
for rev in (None, "v1"):
    loaded = load_model("tracelang/tiny", revision=rev, attn_implementation="eager")
    print(rev, loaded.model.config.num_hidden_layers, loaded.model.config._attn_implementation)
"""


def test_revision_selects_the_hub_snapshot(tmp_path: Path) -> None:
    """A hub cache with two revisions of one model (offline, so transformers resolves refs locally):
    ``revision`` picks the snapshot. Run in a subprocess: huggingface_hub reads its cache and offline
    settings once, at import."""
    import os
    import subprocess
    import sys

    from transformers import LlamaConfig, LlamaForCausalLM

    from tracelang.models.tokenizer_store import tiny_bpe

    repo = tmp_path / "hub" / "models--tracelang--tiny"
    tok = tiny_bpe()
    for ref, commit, layers in (("main", "a" * 40, 2), ("v1", "b" * 40, 1)):
        config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                             num_attention_heads=2, num_key_value_heads=1)
        snapshot = repo / "snapshots" / commit
        LlamaForCausalLM(config).save_pretrained(snapshot, safe_serialization=True)
        tok.save_pretrained(snapshot)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", _HUB_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-3:-1] == ["None 2 eager", "v1 1 eager"]


def test_corpus_filter_takes_device_and_loading_options(runner, tmp_path: Path) -> None:
    from tracelang.cli import app

    shots = Path(__file__).resolve().parents[1] / "corpora" / "shots.jsonl"
    base = ["corpus", "filter", "--model", "tiny", "--data", str(shots), "--n", "1", "--k", "1",
            "--max-new-tokens", "4", "--quiet", "--out", str(tmp_path / "kept.jsonl")]
    bad = runner.invoke(app, [*base, "--device", "tpu"])
    assert bad.exit_code == 2 and "unknown device 'tpu'" in bad.output and "Traceback" not in bad.output
    ok = runner.invoke(app, [*base, "--device", "cpu", "--attn-implementation", "eager"])
    assert ok.exit_code == 0, ok.output
    if torch.cuda.is_available():
        on_gpu = runner.invoke(app, [*base, "--device", "cuda"])
        assert on_gpu.exit_code == 0, on_gpu.output


def test_solve_passes_loading_options(runner) -> None:
    from tracelang.cli import app

    result = runner.invoke(app, ["solve", "Ann has 3 apples. How many?", "--model", "tiny", "--max-new-tokens", "4",
                                 "--shots", "0", "--device", "cpu", "--attn-implementation", "bogus"])
    assert result.exit_code == 2 and "attention implementation 'bogus'" in result.output
    result = runner.invoke(app, ["solve", "x?", "--model", "tiny", "--revision", "v1", "--device", "cpu"])
    assert result.exit_code == 2 and "--revision: 'tiny' is not a hub model" in result.output


def test_an_adapters_tokenizer_loads_without_any_weights(tmp_path: Path, monkeypatch) -> None:
    import json

    from tracelang.models import adapters, loading

    (tmp_path / adapters.CONFIG).write_text(json.dumps({"base_model_name_or_path": "tiny"}))
    (tmp_path / adapters.WEIGHTS).write_bytes(b"never read")

    def no_weights(*args, **kwargs):
        raise AssertionError("load_tokenizer loaded a model")

    monkeypatch.setattr(loading, "load_model", no_weights)
    tok = loading.load_tokenizer(str(tmp_path))
    assert tok.get_vocab() == loading.load_tokenizer("tiny").get_vocab()
