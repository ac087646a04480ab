"""Grammar-constrained decoding with scope, ops, grounding and value checks (spec/decoding.md).

``compile_tokenizer(tok)`` once per tokenizer; ``Constraint(compiled, make_config(...))`` per row;
``generate(...)`` (our loop: KV cache, fast-forward) or ``TraceLogitsProcessor`` for
``model.generate``. Heavy imports (torch, transformers) stay in the submodules that need them.
"""

from .constraint import Constraint, compile_tokenizer, make_config
from .guide import Config
from .levels import Levels

__all__ = ["Config", "Constraint", "Levels", "compile_tokenizer", "make_config"]
