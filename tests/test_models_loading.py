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
