"""tracelang inside other tools: TRL reward functions (``trl``), lm-evaluation-harness scoring
(``lm_eval``). Each module imports only tracelang; the tools themselves are optional."""
