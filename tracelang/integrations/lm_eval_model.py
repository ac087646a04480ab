"""An lm-evaluation-harness model backend, ``tracelang``, that decodes with tracelang's constrained
decoder: ``lm_eval run --model tracelang --model_args model=shipped ...``.

A tracelang model is a model, the prompt it was trained with, and the decoder's constraint; lm-eval
numbers for it are only `tracelang eval`'s numbers when all three are the same. So each request is
answered as `tracelang eval` answers a problem:

- the prompt is the model's own (``Prompter``: the trained prompt for the shipped model or a
  checkpoint, the instruction preamble and shots for an untrained one), built from the document's
  question (``question_field``); lm-eval's formatted context is used only for a document without one;
- decoding is constrained and grounded in that question (scope, ops, grounding, values), greedy, at
  most the request's ``max_gen_toks`` tokens (``max_new_tokens`` where the task sets none);
- requests are decoded ``batch_size`` at a time in the order lm-eval gives them (its document
  order), so a sample of the same problems in the same order sees the same batches as `tracelang
  eval --batch-size` (padding is part of the arithmetic).

A trace the decoder had to close when the token budget ran out is returned with
``BUDGET_CLOSED_NOTE`` appended (a comment line): the task's scoring counts it wrong, as `tracelang
eval` does, because its end is the decoder's, not the model's.

Registered with lm-eval's ``@register_model`` when imported, and declared as the ``lm_eval.models``
entry point in pyproject.toml for the lm-eval versions that discover plugins. lm-eval 0.4.13 (the
newest release) discovers none: ``python -m tracelang.integrations.lm_eval_run`` is its own CLI with
this module imported first.
"""

from __future__ import annotations

import logging
from typing import Any

import lm_eval.models  # noqa: F401  (lm-eval's own models first: it fills an empty registry only)
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from ..errors import UsageError
from ..evaluation.commands import make_backend
from ..evaluation.constrained import ConstrainedBackend
from ..models.loading import SHIPPED, ModelError, resolve_device, resolve_dtype
from .lm_eval import BUDGET_CLOSED_NOTE

NAME = "tracelang"


def _int(value: Any, key: str, default: int) -> int:
    """A model argument that must be a positive integer (lm-eval hands over ``auto`` or text too)."""
    if value is None or value == "auto":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"--model_args {key}: must be a positive integer, got {value!r}") from None
    if number < 1:
        raise UsageError(f"--model_args {key}: must be a positive integer, got {value!r}")
    return number


def _device(device: str | None) -> str:
    """lm-eval's ``--device`` (its default is ``cuda:0``), resolved as `tracelang eval --device`; a CUDA
    device on a machine without one falls back to ``auto``, as lm-eval's ``hf`` model falls back."""
    try:
        return resolve_device(str(device or "auto"))
    except ModelError:
        if str(device).startswith("cuda"):
            logging.getLogger(__name__).warning("device %s: no CUDA GPU here; using %s", device,
                                                resolve_device("auto"))
            return resolve_device("auto")
        raise


@register_model(NAME)
class TracelangLM(LM):
    """``model``: what `tracelang eval --model` takes (``shipped``, ``embedded``, ``tiny``, a
    checkpoint, an adapter or model directory). ``shots``, ``shots_from``, ``dtype``, ``device``,
    ``seed`` (42), ``batch_size`` (lm-eval's ``--batch_size``), ``max_new_tokens``: as `tracelang eval`'s
    options of those names, with its defaults."""

    def __init__(self, model: str = SHIPPED, shots: int | None = None, shots_from: str | None = None,
                 max_new_tokens: int = 320, batch_size: int | str = 32, dtype: str = "auto",
                 device: str | None = None, seed: int = 42, question_field: str = "question",
                 **ignored: Any) -> None:
        super().__init__()
        self.batch_size = _int(batch_size, "batch_size", 32)
        self.max_new_tokens = _int(max_new_tokens, "max_new_tokens", 320)
        self.question_field, self.seed = question_field, int(seed)
        try:
            resolved = _device(device)
            self.dtype = resolve_dtype(str(dtype), resolved)
        except ModelError as err:
            raise UsageError(f"--model_args: {err}") from None
        shot_count = None if shots is None else int(shots)
        backend, self.prompter = make_backend(str(model), True, shot_count, shots_from, self.max_new_tokens,
                                              seed=self.seed, dtype=self.dtype, device=resolved)
        assert isinstance(backend, ConstrainedBackend)  # constrain=True with one sample
        self.loaded = backend.loaded
        self._backends = {self.max_new_tokens: backend}
        self.model_name = str(model)

    def _backend(self, max_new_tokens: int) -> ConstrainedBackend:
        """One decoder per token budget (the compiled vocabulary is shared)."""
        if max_new_tokens not in self._backends:
            self._backends[max_new_tokens] = ConstrainedBackend(self.loaded, self.prompter, max_new_tokens,
                                                                seed=self.seed)
        return self._backends[max_new_tokens]

    def _question(self, request: Any) -> str:
        doc = request.doc if isinstance(request.doc, dict) else {}
        question = doc.get(self.question_field)
        return question if isinstance(question, str) and question.strip() else request.args[0]

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Each request's trace, constrained and grounded in its question (stop strings are moot: a
        constrained trace ends where the grammar ends)."""
        out: list[str] = []
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start:start + self.batch_size]
            budgets = [_int(r.args[1].get("max_gen_toks"), "max_gen_toks", self.max_new_tokens) for r in batch]
            texts: dict[int, str] = {}
            for budget in sorted(set(budgets)):
                rows = [i for i, b in enumerate(budgets) if b == budget]
                questions = [self._question(batch[i]) for i in rows]
                generated = self._backend(budget).generate([self.prompter.prompt(q) for q in questions], questions)
                for i, gen in zip(rows, generated, strict=True):
                    texts[i] = gen.text + BUDGET_CLOSED_NOTE if gen.budget_closed else gen.text
            for i, request in enumerate(batch):
                out.append(texts[i])
                self.cache_hook.add_partial("generate_until", request.args, texts[i])
        return out

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        raise UsageError("the tracelang model writes traces: it answers generate_until tasks only, not "
                         "loglikelihood (multiple-choice) ones")

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        raise UsageError("the tracelang model writes traces: it answers generate_until tasks only, not "
                         "loglikelihood_rolling (perplexity) ones")

    def get_model_info(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "tracelang_prompt": self.prompter.version, "dtype": self.dtype,
                "constrained": True}
