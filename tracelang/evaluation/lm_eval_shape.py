"""`results.json`: an evaluation in the shape lm-evaluation-harness writes (``results`` per task
with ``exact_match,none`` and ``exact_match_stderr,none``, ``n-samples``, ``config``, and the
per-problem ``samples``), so that tools that read lm-eval results read ours."""

from __future__ import annotations

import math
from typing import Any

TASK = "tracelang_gsm8k"  # the task of integrations/lm_eval/tracelang_gsm8k.yaml


def results(metrics: dict[str, Any], rows: list[dict[str, Any]], total: int) -> dict[str, Any]:
    n, k = metrics["n"], metrics["correct"]
    acc = k / n if n else 0.0
    stderr = math.sqrt(acc * (1 - acc) / (n - 1)) if n > 1 else 0.0  # lm-eval's mean_stderr (sample sd / sqrt n)
    cfg = metrics.get("config", {})
    return {
        "results": {TASK: {"alias": TASK, "exact_match,none": acc, "exact_match_stderr,none": stderr}},
        "n-samples": {TASK: {"original": total, "effective": n}},
        "configs": {TASK: {"task": TASK, "dataset": metrics.get("dataset"), "output_type": "generate_until",
                           "metric_list": [{"metric": "exact_match", "aggregation": "mean",
                                            "higher_is_better": True}],
                           "generation_kwargs": {"do_sample": False, "max_gen_toks": cfg.get("max_new_tokens"),
                                                 "constrained": cfg.get("constrain")},
                           "num_fewshot": cfg.get("shots", 0)}},
        "config": {"model": cfg.get("model"), "model_args": f"dtype={cfg.get('dtype')}",
                   "batch_size": cfg.get("batch_size"), "random_seed": cfg.get("seed")},
        "samples": {TASK: [{"doc_id": i, "doc": {"id": r["id"], "question": r["question"]}, "target": r["gold"],
                            "resps": [[r["trace"]]], "filtered_resps": [r["answer"]],
                            "exact_match": float(bool(r["correct"]))} for i, r in enumerate(rows)]},
    }
