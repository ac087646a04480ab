"""lm-eval loads this file by path (`!function utils.process_results`); the scoring is tracelang's."""

from tracelang.integrations.lm_eval import process_results

__all__ = ["process_results"]
