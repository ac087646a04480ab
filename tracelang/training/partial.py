"""A causal LM seen as a frozen prefix, a trainable suffix and a head: partial unfreezing done fast.

- The first ``L - N`` decoder layers (and the embeddings) are frozen. They run under
  ``torch.no_grad`` — no graph, no gradients — and their output can be cached per example across
  epochs (``prefix_frozen``: dropout is off in eval mode, so the prefix is a pure function).
- The last ``N`` layers (and the final norm) train; they start from the cached prefix output.
- The head is evaluated only where a loss is taken (target positions), and only over the tokens
  the loss needs (see ``logprobs.py``).

The split works on the model's own forward: the layers outside the part being run are swapped
for identity modules for the duration of the call, so masks, rotary embeddings and per-layer
attention types (Gemma 3's sliding/full pattern) stay the model's own. ``verify_split`` checks
on a real input that prefix + suffix reproduce the model's own hidden states.

Head modes (``train_lm_head``):

- ``none``: frozen.
- ``full``: the whole ``lm_head`` trains. With tied embeddings (Gemma 3, Llama 3.2) that *is* the
  input embedding matrix (262,144 x 640 for the embedded model): it trains as both, so the
  gradient must flow back through every frozen layer to the inputs and the prefix cannot be
  cached. This is what the study did.
- ``grammar``: an untied copy of the rows of the tokens the grammar can ever emit (emittable.py)
  trains as the output head; every other row, and the input embeddings, stay as they were. Under
  constrained decoding only those rows are ever scored, so nothing else could matter there; the
  prefix stays frozen and cacheable.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..decoding.generate import softcap
from ..errors import TracelangError
from .batching import Batch
from .logprobs import target_logprobs


class SplitError(TracelangError, RuntimeError):
    """A model whose layers this module cannot run in two parts."""


class _Skip(nn.Module):
    """Stands in for a layer outside the part being run."""

    def forward(self, hidden_states, *args, **kwargs):  # noqa: ARG002 - the layer's signature
        return hidden_states


def decoder_of(model: nn.Module) -> nn.Module:
    """The decoder stack (``layers`` and ``norm``) of a causal LM."""
    base = model.get_decoder() if hasattr(model, "get_decoder") else None
    if base is None:  # transformers 4.56's LlamaForCausalLM.get_decoder() returns None
        base = getattr(model, "model", None)
    if base is None or not isinstance(getattr(base, "layers", None), nn.ModuleList) or not hasattr(base, "norm"):
        raise SplitError(f"{type(model).__name__}: expected a decoder with `layers` (ModuleList) and `norm`")
    return base


class PartialModel(nn.Module):
    def __init__(self, model: nn.Module, unfreeze_layers: int, head_mode: str = "grammar",
                 train_final_norm: bool = True, subset_ids: Sequence[int] = (), adapters: bool = False):
        """``adapters``: the model carries peft LoRA modules; they train (and the prefix ends at
        the first layer that has one)."""
        super().__init__()
        self.model = model
        self.base = decoder_of(model)
        self.n_layers = len(self.base.layers)
        if unfreeze_layers > self.n_layers:
            raise SplitError(f"unfreeze_layers={unfreeze_layers} but the model has {self.n_layers} layers")
        self.k = self.n_layers - unfreeze_layers  # first trainable layer
        self.head_mode = head_mode
        head = model.get_output_embeddings()
        embed = model.get_input_embeddings()
        self.tied = head.weight is embed.weight
        self.cap = getattr(model.config, "final_logit_softcapping", None)
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in self.base.layers[self.k:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        if train_final_norm and unfreeze_layers > 0:
            for p in self.base.norm.parameters():
                p.requires_grad_(True)
        if head_mode == "full":
            head.weight.requires_grad_(True)
        if adapters:
            with_adapter = [i for i, layer in enumerate(self.base.layers)
                            if any("lora_" in name for name, _ in layer.named_parameters())]
            if not with_adapter:
                raise SplitError(f"{type(model).__name__}: no LoRA adapter in any decoder layer")
            for name, p in model.named_parameters():
                if "lora_" in name:
                    p.requires_grad_(True)
            self.k = min(self.k, with_adapter[0])
        self.adapters = adapters
        ids = torch.tensor(sorted(set(int(i) for i in subset_ids)), dtype=torch.long)
        if len(ids) == 0:
            ids = torch.arange(head.weight.shape[0])
        self.register_buffer("subset", ids, persistent=False)
        index = torch.full((head.weight.shape[0],), -1, dtype=torch.long)
        index[ids] = torch.arange(len(ids))
        self.register_buffer("subset_index", index, persistent=False)
        self.head_rows = nn.Parameter(head.weight.detach()[ids].clone()) if head_mode == "grammar" else None
        self._frozen_subset: Tensor | None = None
        # the head and the loss in this dtype, outside autocast (None: the weights' own). Under bf16
        # the logits of a confident model are rounded to ~0.4% of their size, as big as the loss
        # itself; every bf16 run of the embedded model diverged once its loss got that small.
        self.head_dtype: torch.dtype | None = None
        model.eval()  # dropout off: the frozen prefix is deterministic, and so is training

    # ---------------------------------------------------------------- what trains

    @property
    def head_weight(self) -> Tensor:
        return self.model.get_output_embeddings().weight

    @property
    def prefix_frozen(self) -> bool:
        """True when nothing before layer k trains (then its output can be cached)."""
        return not (self.head_mode == "full" and self.tied)

    def trained_parameters(self) -> dict[str, nn.Parameter]:
        return {name: p for name, p in self.named_parameters() if p.requires_grad}

    def describe(self) -> list[str]:
        """Lines for the log: what trains, in parameters."""
        total = sum(p.numel() for p in self.model.parameters())
        layers = sum(p.numel() for layer in self.base.layers[self.k:] for p in layer.parameters())
        norm = sum(p.numel() for p in self.base.norm.parameters() if p.requires_grad)
        w = self.head_weight
        if self.adapters:
            lora = sum(p.numel() for n, p in self.model.named_parameters() if "lora_" in n)
            lines = [f"model: {total - lora:,} parameters, {self.n_layers} decoder layers; LoRA adapters on the last "
                     f"{self.n_layers - self.k} ({lora:,} parameters); layers 0-{self.k - 1} are a frozen prefix"]
            total -= lora
        else:
            extra = f" + final norm ({norm:,})" if norm else ""
            lines = [f"model: {total:,} parameters, {self.n_layers} decoder layers; training the last "
                     f"{self.n_layers - self.k} ({layers:,} parameters){extra}"]
        if self.head_mode == "full":
            what = (f"lm_head is tied to the input embeddings: training it trains the whole {w.shape[0]:,} x "
                    f"{w.shape[1]:,} embedding matrix = {w.numel():,} parameters, as input embeddings too "
                    "(gradients flow back through every frozen layer; the prefix is not cached)"
                    if self.tied else f"lm_head: {w.shape[0]:,} x {w.shape[1]:,} = {w.numel():,} parameters")
            lines.append(what)
        elif self.head_mode == "grammar":
            lines.append(f"lm_head: an untied copy of the {len(self.subset):,} rows the grammar can emit "
                         f"({len(self.subset):,} x {w.shape[1]:,} = {self.head_rows.numel():,} parameters, "  # type: ignore[union-attr]
                         f"of {w.numel():,} in the full {'tied ' if self.tied else ''}matrix); input "
                         "embeddings stay frozen")
        else:
            lines.append("lm_head: frozen")
        n = sum(p.numel() for p in self.trained_parameters().values())
        extra = self.head_rows.numel() if self.head_rows is not None else 0
        lines.append(f"trained parameters: {n:,} of {total + extra:,}")
        return lines

    # ---------------------------------------------------------------- running parts of the model

    @contextmanager
    def _only(self, keep: range, norm: bool) -> Iterator[None]:
        layers = self.base.layers
        saved = {i: layers[i] for i in range(self.n_layers) if i not in keep}
        saved_norm = self.base.norm
        try:
            for i in saved:
                layers[i] = _Skip()
            if not norm:
                self.base.norm = nn.Identity()
            yield
        finally:
            for i, layer in saved.items():
                layers[i] = layer
            self.base.norm = saved_norm

    def prefix(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """The frozen part's output (the input to layer k), without a graph."""
        with torch.no_grad(), self._only(range(0, self.k), norm=False):
            return self.base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state

    def suffix(self, states: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Layers k.. and the final norm, from the prefix's output."""
        with self._only(range(self.k, self.n_layers), norm=True), self._adapters_in_autocast():
            return self.base(inputs_embeds=states, attention_mask=attention_mask, use_cache=False).last_hidden_state

    @contextmanager
    def _adapters_in_autocast(self) -> Iterator[None]:
        """Under autocast, float32 adapters on a bfloat16 base need not cast their input up to
        float32 and the result back (peft's default): autocast runs their matmuls in bfloat16
        against float32 master weights. Measured on Gemma 3 270M, 2 cores: 15% faster steps."""
        if not (self.adapters and any(torch.is_autocast_enabled(d) for d in ("cpu", "cuda"))):
            yield
            return
        from peft.helpers import disable_input_dtype_casting

        with disable_input_dtype_casting(self.model):
            yield

    def hidden(self, batch: Batch) -> Tensor:
        """Final (normed) hidden states of a batch, with a graph only where parameters train."""
        if not self.prefix_frozen:  # tied head training: the embeddings train, the whole model runs
            return self.base(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                             use_cache=False).last_hidden_state
        states = batch.prefix_states
        if states is None:
            states = self.prefix(batch.input_ids, batch.attention_mask)
        return self.suffix(states, batch.attention_mask)

    # ---------------------------------------------------------------- the head

    def softcap(self, logits: Tensor) -> Tensor:
        return softcap(logits, self.cap)

    def rows(self, token_ids: Tensor) -> Tensor:
        """Output-head rows of these tokens (trained rows where they train)."""
        # gather, then cast: casting the whole 262k-row matrix per call would dwarf the lookup
        out = self._in_head_dtype(F.embedding(token_ids, self.head_weight))
        if self.head_rows is not None:
            s = self.subset_index[token_ids]
            # F.embedding, not indexing: its backward is deterministic on CPU (indexing's is not)
            rows = self._in_head_dtype(F.embedding(s.clamp(min=0), self.head_rows))
            out = torch.where((s >= 0).unsqueeze(-1), rows, out)
        return out

    def subset_weight(self) -> Tensor:
        """Head rows of the grammar subset, in subset order."""
        if self.head_rows is not None:
            return self._in_head_dtype(self.head_rows)
        if self.head_weight.requires_grad:
            return self._in_head_dtype(self.head_weight[self.subset])
        if self._frozen_subset is None or self._frozen_subset.device != self.head_weight.device:
            self._frozen_subset = self._in_head_dtype(self.head_weight.detach()[self.subset]).contiguous()
        return self._frozen_subset

    def _in_head_dtype(self, w: Tensor) -> Tensor:
        return w if self.head_dtype is None else w.to(self.head_dtype)

    def full_logits(self, h: Tensor) -> Tensor:
        logits = F.linear(h, self._in_head_dtype(self.head_weight))
        if self.head_rows is not None:
            logits = logits.index_copy(-1, self.subset, F.linear(h, self._in_head_dtype(self.head_rows)))
        return self.softcap(logits)

    def forward(self, batch: Batch, vocab: str = "full", temperature: float = 1.0) -> Tensor:
        """Log-probability of each scored target ([P]) under the chosen normalisation."""
        h = self.hidden(batch)
        h_sel = h.reshape(-1, h.shape[-1]).index_select(0, batch.pred_pos)
        if self.head_dtype is None:
            return target_logprobs(self, h_sel, batch.targets, vocab, batch.allowed, temperature)
        with torch.autocast(h_sel.device.type, enabled=False):
            return target_logprobs(self, h_sel.to(self.head_dtype), batch.targets, vocab, batch.allowed, temperature)

    # ---------------------------------------------------------------- serving and checks

    @contextmanager
    def serving(self) -> Iterator[nn.Module]:
        """The model with the trained head installed as its ``lm_head`` (for ``generate``)."""
        if self.head_rows is None:
            yield self.model
            return
        original = self.model.get_output_embeddings()
        self.model.set_output_embeddings(_PatchedHead(self.head_weight, self.subset, self.head_rows))
        try:
            yield self.model
        finally:
            self.model.set_output_embeddings(original)

    def verify_split(self, input_ids: Tensor) -> float:
        """Largest difference between prefix + suffix and the model's own final hidden states."""
        with torch.no_grad():
            own = self.base(input_ids=input_ids, use_cache=False).last_hidden_state
            ours = self.suffix(self.prefix(input_ids))
        diff = float((own - ours).abs().max())
        scale = float(own.abs().max()) or 1.0
        if not diff <= 1e-4 * scale + 1e-5:
            raise SplitError(f"{type(self.model).__name__}: running the layers in two parts changes the output "
                             f"(max difference {diff:.3g}); this architecture is not supported")
        return diff


class _PatchedHead(nn.Module):
    """``lm_head`` with the grammar rows replaced by the trained ones (inference only)."""

    def __init__(self, weight: Tensor, subset: Tensor, rows: Tensor):
        super().__init__()
        self.weight, self.subset, self.rows = weight, subset, rows

    def forward(self, h: Tensor) -> Tensor:
        return F.linear(h, self.weight).index_copy(-1, self.subset, F.linear(h, self.rows))
