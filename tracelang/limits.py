"""Resource limits: every input is bounded so that a hostile trace fails in milliseconds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_chars: int = 200_000  # one trace's text
    max_depth: int = 8  # indentation levels (a real trace needs 3)
    max_steps: int = 2_000  # steps over all blocks
    max_blocks: int = 64  # blocks of a composed trace
    max_name_chars: int = 128
    max_literal_digits: int = 40
    max_value_digits: int = 400  # numerator or denominator of any computed value
    max_exponent: int = 256


DEFAULT_LIMITS = Limits()
