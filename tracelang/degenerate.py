"""The no-op rules (E401) that look at a step's shape, shared by the checker and the decoder's guide
so that the two cannot drift apart.

A step is degenerate when its value is one of its inputs unchanged or a constant whatever its inputs
hold: then it only carries a value (or a number the writer chose) to the query, which is writing the
answer in. Literal identities (``add 0``, ``mul 1``) are ``OpSpec.identity``; the rules here cover
an argument given twice, rounding a value that is already an integer, and the percent identities.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from .numbers import ZERO, Exact

# The repeat changes nothing: max(a, a, b) is max(a, b); max(a, a) is a.
IDEMPOTENT = frozenset({"min", "max"})
# The first arg repeated later makes the value a constant: a - a, a / a, a mod a, |a - a|, a > a, a = a.
SELF_CONSTANT = frozenset({"sub", "div", "mod", "diff", "ratio", "gt", "lt", "eq"})
# Rounding an integer leaves it unchanged.
ROUNDING = frozenset({"floor", "ceil"})
# Integers in, an integer out.
CLOSED = frozenset({"add", "sub", "mul", "mod", "min", "max", "diff"})
# An integer whatever the inputs.
ALWAYS_INTEGRAL = frozenset({"floor", "ceil", "gt", "lt", "eq"})
# The rate at which a percent op leaves its base unchanged.
PERCENT_IDENTITY: dict[str, Exact] = {"percent_of": Exact(100), "percent_off": ZERO, "percent_increase": ZERO}


def repeated(cop: str, keys: Sequence[Hashable]) -> str | None:
    """``"idempotent"`` or ``"constant"`` when the args (by name or literal, ``keys``) repeat in a way
    that makes the step degenerate, else None. A prefix that repeats stays so whatever follows."""
    if cop in IDEMPOTENT and len(set(keys)) < len(keys):
        return "idempotent"
    if cop in SELF_CONSTANT and keys and keys[0] in keys[1:]:
        return "constant"
    return None


def integral_result(cop: str, integral: Sequence[bool], exponent: Exact | None) -> bool:
    """Whether a compute or compare step's value is an integer by construction (for every value
    its integer inputs may hold). ``exponent``: pow's second arg when it is a literal."""
    if cop in ALWAYS_INTEGRAL:
        return True
    if cop in CLOSED:
        return all(integral)
    if cop == "pow":
        return bool(integral) and integral[0] and exponent is not None and exponent.denominator == 1 \
            and exponent >= 0
    return False  # div, ratio: a fraction in general
