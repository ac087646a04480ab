"""Metrics over predictions: accuracy with a Wilson interval, validity, failures by code and kind."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for k successes in n trials (95% by default)."""
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarize(predictions: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics of ``metrics.json`` from prediction rows (see runner.Prediction)."""
    n = len(predictions)
    correct = sum(bool(p["correct"]) for p in predictions)
    valid = sum(bool(p["valid"]) for p in predictions)
    by_expert: dict[str, dict[str, Any]] = {}
    for p in predictions:
        key = p.get("gold_expert") or "unknown"
        row = by_expert.setdefault(key, {"n": 0, "correct": 0})
        row["n"] += 1
        row["correct"] += int(bool(p["correct"]))
    for row in by_expert.values():
        row["accuracy"] = row["correct"] / row["n"]
    failures = Counter(code for p in predictions for code in p["codes"])
    kinds = Counter(p["failure"] for p in predictions if p.get("failure"))
    lo, hi = wilson(correct, n)
    sampled = [p for p in predictions if "pass" in p]
    passed = sum(bool(p["pass"]) for p in sampled)
    seconds = sum(p.get("seconds", 0.0) for p in predictions)
    tokens = sum(p.get("new_tokens", 0) for p in predictions)
    return {
        "n": n,
        "correct": correct,
        "accuracy": correct / n if n else 0.0,
        "ci95": [lo, hi],
        "parsed": sum(bool(p["parsed"]) for p in predictions),
        "valid": valid,
        "wrong_answer": valid - correct,
        "invalid_trace": n - valid,
        "budget_closed": sum(bool(p.get("budget_closed")) for p in predictions),  # counted as invalid too
        "wrong_expert": sum(bool(p.get("wrong_expert")) for p in predictions),
        "by_expert": dict(sorted(by_expert.items())),
        "failures": dict(failures.most_common()),
        "taxonomy": dict(kinds.most_common()),
        # maj@k runs: a right answer among a problem's k samples (pass@k), beside the vote (accuracy)
        **({"pass_at_k": passed, "pass_ci95": list(wilson(passed, n))} if sampled and len(sampled) == n else {}),
        "generated_tokens": tokens,
        "generation_seconds": round(seconds, 3),
    }
