"""The grammar exports: the regex has only needed escapes and matches what the canonical regex
matches; every export compiles in xgrammar and llguidance (when installed) and accepts the canonical
examples, and rejects a non-canonical trace."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from tracelang.decoding.export import to_ebnf, to_lark, to_regex, vllm_request
from tracelang.grammar import canonical_regex

ROOT = Path(__file__).resolve().parents[1]


def _canonical_examples() -> list[str]:
    from tracelang.decoding.bench import load_traces

    texts = [t.text for t in load_traces(sorted(str(p) for p in (ROOT / "corpora" / "examples").glob("*.yaml")))]
    assert len(texts) == 9 and any(t.startswith("- expert:") for t in texts)  # single and composed forms
    return texts


EXAMPLES = _canonical_examples()
# Each breaks the canonical form in one place: a comment, a space, a leading zero, an unknown op.
NEAR_MISSES = [EXAMPLES[0].replace("\n", "  # note\n", 1), EXAMPLES[0].replace("op: ", "op:  ", 1),
               EXAMPLES[0].replace("value: 14", "value: 014"),
               EXAMPLES[0].replace("compute_op: mul", "compute_op: times")]


def test_regex_export_has_only_needed_escapes():
    pattern = to_regex()
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


def test_regex_export_matches_the_canonical_language():
    exported = re.compile(to_regex())
    for text in EXAMPLES + NEAR_MISSES:
        assert bool(exported.fullmatch(text)) == bool(canonical_regex().fullmatch(text)), text
    assert all(exported.fullmatch(t) for t in EXAMPLES)
    assert not any(exported.fullmatch(t) for t in NEAR_MISSES)


def test_vllm_fragment_is_ebnf():
    grammar = vllm_request()["structured_outputs"]["grammar"]
    assert grammar == to_ebnf() and grammar.startswith("root ::= ")
    # vLLM's xgrammar backend treats a grammar with no `::=` line as Lark and rewrites it
    assert all("::=" in line for line in grammar.splitlines())
    assert vllm_request("regex")["structured_outputs"]["regex"] == to_regex()
    with pytest.raises(ValueError):
        vllm_request("gbnf")


def test_cli_vllm_format_prints_the_ebnf_fragment(runner):
    import json

    from tracelang.cli import app

    result = runner.invoke(app, ["decode", "export", "--format", "vllm"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["structured_outputs"]["grammar"].startswith("root ::=")


@pytest.fixture(scope="module")
def tokenizer():
    from tracelang.models.tokenizer_store import tiny_bpe

    return tiny_bpe()


def test_xgrammar_compiles_each_export_and_accepts_the_examples(tokenizer, capfd):
    xgr = pytest.importorskip("xgrammar")
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))
    compiler = xgr.GrammarCompiler(info, cache_enabled=False)
    capfd.readouterr()
    compiled = {"ebnf": compiler.compile_grammar(to_ebnf()), "regex": compiler.compile_regex(to_regex())}
    assert "Warning" not in capfd.readouterr().err  # the re.escape-style regex drew hundreds
    for name, grammar in compiled.items():
        for text in EXAMPLES:
            matcher = xgr.GrammarMatcher(grammar)
            assert matcher.accept_string(text) and matcher.is_terminated() is False, (name, text)
            assert matcher.accept_token(tokenizer.eos_token_id), (name, text)  # complete: it may stop here
        for text in NEAR_MISSES:
            assert not xgr.GrammarMatcher(grammar).accept_string(text), (name, text)


def test_llguidance_compiles_each_export_and_accepts_the_examples(tokenizer):
    llg = pytest.importorskip("llguidance")
    import llguidance.hf

    lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=len(tokenizer))
    # "grammar" is what vLLM's guidance backend passes: Lark or GBNF
    grammars = {"lark": llg.grammar_from("lark", to_lark()), "ebnf": llg.grammar_from("grammar", to_ebnf()),
                "regex": llg.grammar_from("regex", to_regex())}
    for name, grammar in grammars.items():
        assert llg.LLMatcher.validate_grammar(grammar) == "", name
        for text in EXAMPLES:
            matcher = llg.LLMatcher(lltok, grammar)
            assert matcher.consume_tokens(tokenizer.encode(text, add_special_tokens=False)), (name, text)
            assert matcher.is_accepting() and not matcher.is_error(), (name, text)
        for text in NEAR_MISSES:
            matcher = llg.LLMatcher(lltok, grammar)
            ok = matcher.consume_tokens(tokenizer.encode(text, add_special_tokens=False))
            assert not (ok and matcher.is_accepting()), (name, text)
