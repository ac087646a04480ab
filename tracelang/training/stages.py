"""The training stages, by name, in the order `train run` runs them: the one place a stage is named.

A stage's name is its recipe section, its `train NAME` command (with the help below), its run
directory, the key of its settings (``config.STAGE_SETTINGS``) and the name its trainer registers
under (``stage.TRAINERS``); both of those are checked against this list. It imports nothing, so the
command line lists the stages without loading the settings' models.
"""

from __future__ import annotations

STAGES: dict[str, str] = {
    "sft": "Supervised fine-tuning (LoRA adapters, or the last N layers + head) on corpora of verified traces.",
    "rl": "GRPO on constrained rollouts, rewarded by the checker and the runtime.",
}
SECTIONS = (*STAGES, "eval")  # a recipe's sections: the stages', then the evaluations'
