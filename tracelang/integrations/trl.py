"""tracelang inside TRL's ``GRPOTrainer``.

Rewards: functions with TRL's signature, ``f(prompts, completions, **columns) -> list[float]``, that
grade a completion with tracelang's checker and exact runtime (the verifier RL reward).
``GRPOTrainer(reward_funcs=[correctness_reward, validity_reward], ...)`` on a dataset with
``prompt``, ``answer`` (GSM-8K's ``#### n`` or a number) and, for grounding, ``question`` columns.
Completions may be strings (standard format) or message lists (conversational format: the last
assistant message's content is graded).

Generation: ``constrain_generation(trainer.model, tokenizer, questions)`` makes the trainer's
rollouts (``model.generate``, TRL's path without vLLM) decode under tracelang's constraint, each row
grounded in its own question. TRL passes ``generate`` only a ``GenerationConfig``, which holds no
logits processor, so the hook is the model's ``generate`` itself: an instance attribute that adds a
fresh ``TraceLogitsProcessor`` to each call (the pattern transformers uses for ``custom_generate``).
With vLLM, TRL's own hook is ``vllm_structured_outputs_regex`` (integrations/trl/grpo_example.py).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from ..training.reward import RewardSpec, verifier_reward


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return ""


def _column(values: Any, n: int) -> list[Any]:
    if values is None:
        return [None] * n
    if isinstance(values, (str, int, float)):
        return [values] * n
    return list(values)


def _grade(spec: RewardSpec, completions: list[Any], answer: Any, question: Any) -> list[float]:
    grade = verifier_reward(spec)
    answers, questions = _column(answer, len(completions)), _column(question, len(completions))
    return [grade(_text(c), None if a is None else str(a), q)[0]
            for c, a, q in zip(completions, answers, questions, strict=True)]


def correctness_reward(prompts: list[Any], completions: list[Any], answer: Any = None, question: Any = None,
                       **kwargs: Any) -> list[float]:
    """1.0 when the trace checks, runs and gives the gold answer; 0.0 otherwise."""
    return _grade(RewardSpec(correct=1.0, valid=0.0, parsed=0.0, invalid=0.0), completions, answer, question)


def validity_reward(prompts: list[Any], completions: list[Any], question: Any = None, **kwargs: Any) -> list[float]:
    """Partial credit for form: 0.2 for a trace that checks and runs (whatever its answer), 0.05 for
    one that parses with errors, 0 for text that is not a trace."""
    return _grade(RewardSpec(correct=0.2, valid=0.2, parsed=0.05, invalid=0.0), completions, None, question)


def tracelang_reward(prompts: list[Any], completions: list[Any], answer: Any = None, question: Any = None,
                     **kwargs: Any) -> list[float]:
    """The reward `tracelang train rl` uses by default: 1 correct, 0.2 valid, 0.05 parsed, 0."""
    return _grade(RewardSpec(), completions, answer, question)


def _question_of(prompt: str, questions: list[str]) -> str:
    """The question a rendered prompt was made from: the longest known question it contains."""
    for question in questions:
        if question in prompt:
            return question
    raise ValueError(f"constrain_generation: a prompt holds none of the questions it was given: {prompt[-200:]!r}")


def constrain_generation(model: Any, tokenizer: Any, questions: Iterable[str] | None = None,
                         levels: str = "all", surface: str = "yaml") -> Any:
    """Make ``model.generate`` decode under tracelang's constraint (``levels``: as a recipe's
    ``constraint_levels``; ``surface``: the one the model writes, its ``Prompter``'s). With
    ``questions`` (the dataset's), each row is grounded in the question its prompt holds, so init
    values are the question's quantities, as in `tracelang eval`; a prompt holding none of them is
    an error, never a silently ungrounded row. Returns ``model``.

    Every rollout then parses; a finished row only pads with EOS. Fast-forward is not available
    through ``generate`` (one token per step), so forced tokens are taken one at a time."""
    from transformers import LogitsProcessorList

    from ..decoding.constraint import Constraint, compile_tokenizer, make_config
    from ..decoding.guide import Levels
    from ..decoding.hf import TraceLogitsProcessor

    compiled = compile_tokenizer(tokenizer, surface=surface)
    guide_levels = Levels.parse(levels)
    known = sorted({q.strip() for q in questions or () if q and q.strip()}, key=len, reverse=True)
    unconstrained = model.generate

    @functools.wraps(unconstrained)
    def generate(*args: Any, **kwargs: Any) -> Any:
        input_ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        if known:
            prompts = tokenizer.batch_decode(input_ids, skip_special_tokens=True)
            configs = [make_config(guide_levels, question=_question_of(p, known)) for p in prompts]
        else:
            configs = [make_config(guide_levels)] * len(input_ids)
        processor = TraceLogitsProcessor(lambda i: Constraint(compiled, configs[i]), input_ids.shape[1])
        processors = LogitsProcessorList([*(kwargs.pop("logits_processor", None) or []), processor])
        return unconstrained(*args, logits_processor=processors, **kwargs)

    model.generate = generate
    return model


def trl_prompt(prompter: Any, question: str) -> str:
    """The model's own prompt for ``question`` (``tracelang.models.Prompter``) as a TRL standard-format
    prompt. TRL tokenizes it with the tokenizer's special tokens, so a BOS the chat template already
    wrote is left out here (it would be there twice)."""
    text = prompter.prompt(question)
    bos = getattr(prompter.tokenizer, "bos_token", None)
    return text[len(bos):] if bos and text.startswith(bos) else text
