"""LoRA adapters in peft's own format: ``adapter_config.json`` + ``adapter_model.safetensors``, the
files ``peft.PeftModel.from_pretrained`` reads. Training attaches them (``attach``), checkpoints
write them (``save``), inference merges them into the base weights (``merge``) so that the
generation loop runs a plain model at full speed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UsageError

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"


class AdapterError(UsageError, RuntimeError):
    """An adapter directory that cannot be used."""


def is_adapter(path: str | Path) -> bool:
    return (Path(path) / CONFIG).is_file() and (Path(path) / WEIGHTS).is_file()


def attach(model: Any, r: int, alpha: float, dropout: float, targets: list[str], layers: list[int] | None) -> Any:
    """Wrap ``model`` in a ``PeftModel`` with fresh LoRA adapters (peft's initialisation: B = 0,
    so the wrapped model computes exactly what the base did). The adapters are float32 whatever
    the base's dtype (peft's default): bf16 optimiser updates would round away."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets),
                        layers_to_transform=layers, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def save(peft_model: Any, directory: Path) -> None:
    """The two standard files, into an existing directory (the caller makes the write atomic)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(peft_model).items()}
    save_file(state, str(Path(directory) / WEIGHTS), metadata={"format": "pt"})
    peft_model.peft_config["default"].save_pretrained(str(directory))


def _config(directory: Path) -> dict[str, Any]:
    try:
        config = json.loads((Path(directory) / CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise AdapterError(f"{directory / CONFIG}: not a readable adapter config ({err})") from None
    if config.get("peft_type") != "LORA":
        raise AdapterError(f"{directory / CONFIG}: peft_type {config.get('peft_type')!r}; only LoRA adapters are used")
    return config


def _weights(directory: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(Path(directory) / WEIGHTS))
    except (OSError, SafetensorError) as err:
        raise AdapterError(f"{directory / WEIGHTS}: not readable safetensors ({err})") from None


def load_into(peft_model: Any, directory: Path) -> None:
    """Copy an adapter's weights into the live adapters of ``peft_model`` (same shapes)."""
    from peft import set_peft_model_state_dict

    _config(directory)
    weights = _weights(directory)
    own = peft_model.get_base_model().state_dict()
    for key, value in weights.items():
        name = key.removeprefix("base_model.model.").replace(".lora_A.weight", ".lora_A.default.weight") \
            .replace(".lora_B.weight", ".lora_B.default.weight")
        if name not in own or own[name].shape != value.shape:
            raise AdapterError(f"{directory / WEIGHTS}: {key} does not fit this run's adapters "
                               "(another rank, target modules or layers?)")
    result = set_peft_model_state_dict(peft_model, weights)
    if getattr(result, "unexpected_keys", None):
        raise AdapterError(f"{directory / WEIGHTS}: unexpected {result.unexpected_keys[0]}")


def merge(model: Any, directory: Path) -> Any:
    """``model`` with the adapter's low-rank updates added to its weights (W + s·BA), as a plain
    transformers model. Merge in the weights' own dtype; callers that serve in bfloat16 merge in
    float32 first and cast after."""
    from peft import PeftModel

    _config(directory)
    try:
        wrapped = PeftModel.from_pretrained(model, str(directory), is_trainable=False)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise AdapterError(f"{directory}: cannot apply the adapter ({str(err).splitlines()[0]})") from None
    return wrapped.merge_and_unload()
