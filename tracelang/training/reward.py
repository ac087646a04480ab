"""The verifier's reward: the checker and the exact runtime grade a sampled trace.

``correct`` when it runs to the gold answer; ``valid`` (partial credit) when it checks and runs but
answers wrong; ``parsed`` when it parses but has errors; ``invalid`` otherwise. A valid trace loses
``warning`` per warning (W701: an input the question does not state, ...). Values come from the recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..grounding import grounder_for
from ..pipeline import analyze


@dataclass(frozen=True)
class RewardSpec:
    correct: float = 1.0
    valid: float = 0.2
    parsed: float = 0.05
    invalid: float = 0.0
    warning: float = 0.0

    @classmethod
    def of(cls, cfg) -> RewardSpec:
        return cls(cfg.reward_correct, cfg.reward_valid, cfg.reward_parsed, cfg.reward_invalid, cfg.reward_warning)


RewardFn = Callable[[str, str | None, str | None], tuple[float, dict]]  # (text, gold, question) -> (reward, info)


def verifier_reward(spec: RewardSpec) -> RewardFn:
    def reward(text: str, gold: str | None, question: str | None) -> tuple[float, dict]:
        report = analyze(text, expected=gold, grounder=grounder_for(question) if question else None)
        warnings = sum(d.severity == "warning" for d in report.diagnostics)
        valid = report.ok and report.answer is not None
        if report.correct:
            value, kind = spec.correct - spec.warning * warnings, "correct"
        elif valid:
            value, kind = spec.valid - spec.warning * warnings, "valid"
        elif report.program is not None:
            value, kind = spec.parsed, "parsed"
        else:
            value, kind = spec.invalid, "invalid"
        return value, {"kind": kind, "correct": bool(report.correct), "valid": valid, "warnings": warnings}

    return reward
