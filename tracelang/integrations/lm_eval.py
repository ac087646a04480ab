"""Scoring for the lm-evaluation-harness task in ``integrations/lm_eval/tracelang_gsm8k.yaml``:
the model's completion is a trace; tracelang checks and executes it, and the exact answer is
compared with the gold one. lm-eval decodes without tracelang's grammar constraint, so a model
trained for constrained decoding (the shipped one) scores lower there than in `tracelang eval`."""

from __future__ import annotations

from typing import Any

from ..grounding import grounder_for
from ..numbers import answer_value
from ..pipeline import analyze


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """lm-eval's per-document hook: ``results[0]`` is the generated text."""
    gold = answer_value(doc.get("answer", ""))
    text = results[0] if results else ""
    if gold is None:  # a document without an exact answer is never graded correct
        return {"exact_match": 0.0}
    report = analyze(text, expected=gold, grounder=grounder_for(doc.get("question") or ""))
    return {"exact_match": float(bool(report.correct))}
