"""The grammar is the one truth: the IR, the formatter and the registry must agree with it."""

from __future__ import annotations

import re

from tracelang import experts
from tracelang.grammar import canonical_parser, canonical_regex, grammar_hash, terminal_choices
from tracelang.ir import STEP_TYPES, step_fields

# canonical rule of each op -> the op names it covers
RULES = {"c_init": ["init"], "c_source": ["init"], "c_compute": ["compute"], "c_query": ["query"],
         "c_percent": ["percent_of", "percent_off", "percent_increase"], "c_transfer": ["transfer"],
         "c_consume": ["consume"], "c_add_entity": ["add_entity"], "c_compare": ["compare"]}


def _rule_keys(rule: str) -> list[list[str]]:
    """The field keys each expansion of a canonical step rule writes, in order."""
    parser = canonical_parser()
    literals = {t.name: t.pattern.value for t in parser.terminals}
    out = []
    for r in parser.rules:
        if r.origin.name != rule:
            continue
        text = "".join(literals.get(s.name, " ") for s in r.expansion if s.is_term)
        out.append(re.findall(r"([a-z_]+): ", text))
    return out


def test_canonical_rules_cover_every_op() -> None:
    assert {op for ops in RULES.values() for op in ops} == set(STEP_TYPES)


def test_canonical_key_order_is_the_ir_field_order() -> None:
    for rule, ops in RULES.items():
        fields = list(step_fields(STEP_TYPES[ops[0]]))
        for keys in _rule_keys(rule):
            keys = [k for k in keys if k != "op"]  # `op:` itself comes from canon_step
            expected = [f for f in fields if f in keys]
            assert keys == expected, (rule, keys, fields)
            if rule != "c_init" and rule != "c_source":
                assert keys == fields


def test_grammar_op_names_match_the_registry() -> None:
    compute = set(experts.get("arithmetic").tables["compute"])
    compare = set(experts.get("comparison").tables["compare"])
    assert set(terminal_choices("COMPUTE_OP")) == compute
    assert set(terminal_choices("COMPARE_OP")) == compare
    assert set(terminal_choices("PERCENT_OP")) == {op for op in STEP_TYPES if op.startswith("percent")}
    offered = set().union(*(e.ops for e in experts.experts().values()))
    assert offered == set(STEP_TYPES)


def test_canonical_regex_is_exact() -> None:
    good = "expert: arithmetic\ntrace:\n- {op: init, var: a, value: 2}\n- {op: query, var: a}\n"
    assert canonical_regex().fullmatch(good)
    for bad in (good.replace(": 2", ":  2"), good.rstrip("\n"), good.replace("2}", "2.50}"),
                good.replace("var: a}", "var: a }"), "# c\n" + good, good.replace("{op: init", "{ op: init")):
        assert not canonical_regex().fullmatch(bad), bad


def test_grammar_hash_is_stable() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", grammar_hash())
    assert grammar_hash() == grammar_hash()
