"""Reward functions with TRL's signature, ``f(prompts, completions, **columns) -> list[float]``,
that grade a completion with tracelang's checker and exact runtime (the verifier RL reward).

``GRPOTrainer(reward_funcs=[correctness_reward, validity_reward], ...)`` on a dataset with
``prompt``, ``answer`` (GSM-8K's ``#### n`` or a number) and, for grounding, ``question`` columns.
Completions may be strings (standard format) or message lists (conversational format: the last
assistant message's content is graded).
"""

from __future__ import annotations

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
