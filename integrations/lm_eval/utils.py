"""lm-eval loads this file by path (`!function utils.NAME`); the scoring and the reading are tracelang's.

Importing it also registers the ``tracelang`` model (``tracelang.integrations.lm_eval_model``): lm-eval
0.4.13 resolves a task named by its YAML file (``--tasks integrations/lm_eval/X.yaml``) before it
looks the model up, so ``lm_eval run --model tracelang --tasks integrations/lm_eval/X.yaml`` needs
no other plugin mechanism."""

from tracelang.integrations import lm_eval_model  # noqa: F401  (registers `--model tracelang`)
from tracelang.integrations.lm_eval import local_gsm8k, process_results

__all__ = ["local_gsm8k", "process_results"]
