"""The grammar exports, of both surfaces: the regex has only needed escapes and matches what the
surface's canonical regex matches; every export compiles in xgrammar and llguidance (when installed)
and accepts the canonical examples, and rejects a non-canonical trace."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from tracelang.decoding.export import to_ebnf, to_lark, to_regex, vllm_request
from tracelang.formatter import format_program
from tracelang.grammar import surface_regex
from tracelang.pipeline import parse

ROOT = Path(__file__).resolve().parents[1]


def _canonical_examples() -> list[str]:
    from tracelang.decoding.bench import load_traces

    texts = [t.text for t in load_traces(sorted(str(p) for p in (ROOT / "corpora" / "examples").glob("*.yaml")))]
    assert len(texts) == 9 and any(t.startswith("- expert:") for t in texts)  # single and composed forms
    return texts


YAML_EXAMPLES = _canonical_examples()
COMPACT_EXAMPLES = [format_program(parse(t).program, surface="compact") for t in YAML_EXAMPLES]
# Each breaks the canonical form in one place: a comment, a space, a leading zero, an unknown op.
EXAMPLES = {"yaml": YAML_EXAMPLES, "compact": COMPACT_EXAMPLES}
NEAR_MISSES = {
    "yaml": [YAML_EXAMPLES[0].replace("\n", "  # note\n", 1), YAML_EXAMPLES[0].replace("op: ", "op:  ", 1),
             YAML_EXAMPLES[0].replace("value: 14", "value: 014"),
             YAML_EXAMPLES[0].replace("compute_op: mul", "compute_op: times")],
    "compact": [COMPACT_EXAMPLES[0].replace("\n", "  # note\n", 1), COMPACT_EXAMPLES[0].replace("(", "( ", 1),
                COMPACT_EXAMPLES[0].replace("14 ->", "014 ->"), COMPACT_EXAMPLES[0].replace("mul(", "times("),
                COMPACT_EXAMPLES[0].replace("-> trays", "->trays"), YAML_EXAMPLES[0]],
}
SURFACES = pytest.mark.parametrize("surface", ["yaml", "compact"])


@SURFACES
def test_regex_export_has_only_needed_escapes(surface):
    pattern = to_regex(surface)
    outside, inside = set("\\.^$|?*+()[]{}"), set("\\]-^[")
    # walk it: escapes outside a class must be regex metacharacters (or \n), inside a class only ] - ^ [ \
    in_class, i = False, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            escaped = pattern[i + 1]
            assert escaped == "n" or escaped in (inside if in_class else outside), (escaped, pattern[i - 20:i + 20])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        i += 1
    assert "\n" not in pattern and "\\ " not in pattern and "\\/" not in pattern
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FutureWarning on a possible nested set, DeprecationWarning on a bad escape
        re.compile(pattern)


@SURFACES
def test_regex_export_matches_the_canonical_language(surface):
    exported = re.compile(to_regex(surface))
    for text in EXAMPLES[surface] + NEAR_MISSES[surface]:
        assert bool(exported.fullmatch(text)) == bool(surface_regex(surface).fullmatch(text)), text
    assert all(exported.fullmatch(t) for t in EXAMPLES[surface])
    assert not any(exported.fullmatch(t) for t in NEAR_MISSES[surface])


def test_vllm_fragment_is_ebnf():
    grammar = vllm_request()["structured_outputs"]["grammar"]
    assert grammar == to_ebnf() and grammar.startswith("root ::= ")
    # vLLM's xgrammar backend treats a grammar with no `::=` line as Lark and rewrites it
    assert all("::=" in line for line in grammar.splitlines())
    assert vllm_request("regex")["structured_outputs"]["regex"] == to_regex()
    assert vllm_request("ebnf", "compact")["structured_outputs"]["grammar"] == to_ebnf("compact")
    with pytest.raises(ValueError):
        vllm_request("gbnf")


def test_cli_vllm_format_prints_the_ebnf_fragment(runner):
    import json

    from tracelang.cli import app

    result = runner.invoke(app, ["decode", "export", "--format", "vllm"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["structured_outputs"]["grammar"].startswith("root ::=")
    result = runner.invoke(app, ["decode", "export", "--format", "lark", "--surface", "compact"])
    assert result.exit_code == 0 and result.output == to_lark("compact") and "k_transfer" in result.output
    result = runner.invoke(app, ["decode", "export", "--surface", "toml"])
    assert result.exit_code == 2 and "--surface takes yaml or compact" in result.output


@pytest.fixture(scope="module")
def tokenizer():
    from tracelang.models.tokenizer_store import tiny_bpe

    return tiny_bpe()


@SURFACES
def test_xgrammar_compiles_each_export_and_accepts_the_examples(tokenizer, capfd, surface):
    xgr = pytest.importorskip("xgrammar")
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))
    compiler = xgr.GrammarCompiler(info, cache_enabled=False)
    capfd.readouterr()
    compiled = {"ebnf": compiler.compile_grammar(to_ebnf(surface)), "regex": compiler.compile_regex(to_regex(surface))}
    assert "Warning" not in capfd.readouterr().err  # the re.escape-style regex drew hundreds
    for name, grammar in compiled.items():
        for text in EXAMPLES[surface]:
            matcher = xgr.GrammarMatcher(grammar)
            assert matcher.accept_string(text) and matcher.is_terminated() is False, (name, text)
            assert matcher.accept_token(tokenizer.eos_token_id), (name, text)  # complete: it may stop here
        for text in NEAR_MISSES[surface]:
            assert not xgr.GrammarMatcher(grammar).accept_string(text), (name, text)


@SURFACES
def test_llguidance_compiles_each_export_and_accepts_the_examples(tokenizer, surface):
    llg = pytest.importorskip("llguidance")
    import llguidance.hf

    lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=len(tokenizer))
    # "grammar" is what vLLM's guidance backend passes: Lark or GBNF
    grammars = {"lark": llg.grammar_from("lark", to_lark(surface)),
                "ebnf": llg.grammar_from("grammar", to_ebnf(surface)),
                "regex": llg.grammar_from("regex", to_regex(surface))}
    for name, grammar in grammars.items():
        assert llg.LLMatcher.validate_grammar(grammar) == "", name
        for text in EXAMPLES[surface]:
            matcher = llg.LLMatcher(lltok, grammar)
            assert matcher.consume_tokens(tokenizer.encode(text, add_special_tokens=False)), (name, text)
            assert matcher.is_accepting() and not matcher.is_error(), (name, text)
        for text in NEAR_MISSES[surface]:
            matcher = llg.LLMatcher(lltok, grammar)
            ok = matcher.consume_tokens(tokenizer.encode(text, add_special_tokens=False))
            assert not (ok and matcher.is_accepting()), (name, text)
