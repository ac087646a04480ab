"""Benchmarks of the decoder, each against its baselines in the same run.

``mask_benchmark``: per-token mask time (and the time to take the token) on the same canonical
traces, for tracelang (scope, ops, grounding, values on), xgrammar and llguidance (the same grammar,
syntax only, exported from ``trace.lark``); compile time cold and cached for each.

``generation_benchmark``: a small random model writes the same traces (teacher-forced, so every run
emits exactly the same tokens) unconstrained, constrained, and constrained with fast-forward;
tokens of trace per second and forward passes.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from .automaton import Automaton
from .constraint import Constraint, compile_tokenizer, make_config, save
from .engine import Compiled
from .levels import Levels
from .vocab import Vocab


@dataclass
class Trace:
    text: str
    question: str | None = None


@dataclass
class Timing:
    name: str
    compile_cold: float | None = None
    compile_cached: float | None = None
    mask_us: list[float] = field(default_factory=list)  # first pass (lazy caches cold for tracelang)
    warm_mask_us: list[float] = field(default_factory=list)
    advance_us: list[float] = field(default_factory=list)
    error: str | None = None
    rejected: int = 0  # reference tokens the engine refused (completeness failures)

    def summary(self) -> dict:
        def stats(xs: list[float]) -> dict | None:
            if not xs:
                return None
            a = np.array(xs)
            return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
                    "max": float(a.max()), "n": len(a)}

        return {"engine": self.name, "compile_cold_s": self.compile_cold, "compile_cached_s": self.compile_cached,
                "mask_first_pass_us": stats(self.mask_us), "mask_us": stats(self.warm_mask_us or self.mask_us),
                "advance_us": stats(self.advance_us), "rejected": self.rejected, "error": self.error}


@contextmanager
def _no_gc() -> Iterator[None]:
    """Time without the cyclic collector's pauses (it scans every object the caches hold)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def load_traces(paths: list[str], limit: int | None = None) -> list[Trace]:
    """The traces (and their questions) of corpus JSONL files or .yaml trace files, in canonical
    form: the form the constraint accepts (a hand-written file has comments and its own layout).
    Traces that do not parse whole are left out."""
    from ..fileio import iter_items
    from ..formatter import format_program
    from ..pipeline import parse

    out: list[Trace] = []
    for path in paths:
        for item in iter_items(path):
            if item.error is None and item.text:
                report = parse(item.text)
                if report.program is not None and report.complete and report.ok:
                    out.append(Trace(format_program(report.program), item.question))
    return out[:limit] if limit else out


Matcher = tuple[Callable[[], object], Callable[[int], bool], Callable[[int], object]]  # fill, allowed, take


def _replay(tm: Timing, traces: list[list[int]], passes: int, start: Callable[[int], Matcher]) -> None:
    """Feed every trace to an engine token by token, timing the mask and taking the token apart.

    ``start(i)`` gives trace i's fresh matcher as three calls: fill the mask, is a token in it,
    take a token. Every engine goes through this same loop, so the call overhead is the same."""
    for p in range(passes):
        sink = tm.mask_us if p == 0 else tm.warm_mask_us
        with _no_gc():
            for i, ids in enumerate(traces):
                fill, allowed, take = start(i)
                for tok in ids:
                    a = time.perf_counter()
                    fill()
                    b = time.perf_counter()
                    ok = allowed(tok) and take(tok)
                    c = time.perf_counter()
                    sink.append((b - a) * 1e6)
                    if p == passes - 1:
                        tm.advance_us.append((c - b) * 1e6)
                    if not ok:
                        tm.rejected += 1
                        break


def _ours(tokenizer, traces: list[list[int]], questions: list[str | None], levels: Levels, passes: int,
          surface: str = "yaml") -> Timing:
    tm = Timing("tracelang")
    t0 = time.perf_counter()
    compiled = Compiled(Vocab.from_tokenizer(tokenizer), Automaton(surface))
    tm.compile_cold = time.perf_counter() - t0
    save(compiled)
    t0 = time.perf_counter()
    compile_tokenizer(tokenizer, disk=True, memory=False, surface=surface)
    tm.compile_cached = time.perf_counter() - t0
    configs = [make_config(levels, question=q) if q else make_config(levels.without("grounding"))
               for q in questions]

    def start(i: int) -> Matcher:
        con = Constraint(compiled, configs[i])
        buf = con.new_mask()
        return partial(con.fill_mask, buf), lambda tok: bool((int(buf[tok >> 5]) >> (tok & 31)) & 1), con.try_advance

    _replay(tm, traces, passes, start)
    return tm


def _xgrammar(tokenizer, traces: list[list[int]], passes: int, surface: str = "yaml") -> Timing:
    tm = Timing("xgrammar")
    try:
        import torch
        import xgrammar as xgr
    except ImportError as err:
        tm.error = f"not installed ({err.name}); pip install 'tracelang[bench]'"
        return tm
    from .export import to_ebnf

    t0 = time.perf_counter()
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))
    compiler = xgr.GrammarCompiler(info, cache_enabled=True)
    compiled = compiler.compile_grammar(to_ebnf(surface))
    tm.compile_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiler.compile_grammar(to_ebnf(surface))
    tm.compile_cached = time.perf_counter() - t0
    bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)

    def start(i: int) -> Matcher:
        m = xgr.GrammarMatcher(compiled)
        return (partial(m.fill_next_token_bitmask, bitmask), lambda tok: bool((bitmask[0, tok >> 5] >> (tok & 31)) & 1),
                m.accept_token)

    _replay(tm, traces, passes, start)
    del torch
    return tm


def _llguidance(tokenizer, traces: list[list[int]], passes: int, surface: str = "yaml") -> Timing:
    tm = Timing("llguidance")
    try:
        import llguidance
        import llguidance.hf
        import llguidance.numpy as llnp
    except ImportError as err:
        tm.error = f"not installed ({err.name}); pip install 'tracelang[bench]'"
        return tm
    from .export import to_lark

    t0 = time.perf_counter()
    lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=len(tokenizer))
    grammar = llguidance.grammar_from("lark", to_lark(surface))
    matcher = llguidance.LLMatcher(lltok, grammar)
    tm.compile_cold = time.perf_counter() - t0
    if matcher.is_error():
        tm.error = matcher.get_error()
        return tm
    t0 = time.perf_counter()
    llguidance.LLMatcher(lltok, grammar)  # tokenizer built; the grammar is compiled per matcher
    tm.compile_cached = time.perf_counter() - t0
    bitmask = llnp.allocate_token_bitmask(1, lltok.vocab_size)

    def start(i: int) -> Matcher:
        m = llguidance.LLMatcher(lltok, grammar)
        return (partial(llnp.fill_next_token_bitmask, m, bitmask, 0),
                lambda tok: bool((int(bitmask[0, tok >> 5]) >> (tok & 31)) & 1), m.consume_token)

    _replay(tm, traces, passes, start)
    return tm


def surface_texts(traces: list[Trace], surface: str) -> list[str]:
    """The traces written in ``surface`` (they are loaded in the canonical YAML)."""
    if surface == "yaml":
        return [t.text for t in traces]
    from ..formatter import format_program
    from ..pipeline import parse

    return [format_program(parse(t.text).program, surface=surface) for t in traces]  # type: ignore[arg-type]


def mask_benchmark(tokenizer, traces: list[Trace], levels: Levels = Levels(), passes: int = 2,
                   engines: tuple[str, ...] = ("tracelang", "xgrammar", "llguidance"),
                   progress: Callable[[str], None] | None = None, surfaces: tuple[str, ...] = ("yaml",)) -> list[dict]:
    """One row per surface and engine: the same traces, each surface's own text and grammar."""
    eos = tokenizer.eos_token_id
    out = []
    for surface in surfaces:
        ids = [tokenizer.encode(text, add_special_tokens=False) + [eos] for text in surface_texts(traces, surface)]
        for name in engines:
            if progress:
                progress(f"{name} ({surface})")
            if name == "tracelang":
                tm = _ours(tokenizer, ids, [t.question for t in traces], levels, passes, surface)
            elif name == "xgrammar":
                tm = _xgrammar(tokenizer, ids, passes, surface)
            elif name == "llguidance":
                tm = _llguidance(tokenizer, ids, passes, surface)
            else:
                raise ValueError(f"unknown engine {name}")
            out.append({**tm.summary(), "surface": surface, "tokens": sum(map(len, ids))})
    return out


def generation_benchmark(tokenizer, traces: list[Trace], batch: int = 8, layers: int = 4, hidden: int = 256,
                         seed: int = 0, levels: Levels = Levels(grounding=False)) -> list[dict]:
    """Tokens of trace per second writing the same traces three ways (teacher-forced)."""
    import torch

    from ..models.tiny_model import tiny_model
    from .generate import generate

    torch.manual_seed(seed)
    model = tiny_model(tokenizer, seed=seed, layers=layers, hidden=hidden)
    compiled = compile_tokenizer(tokenizer)
    refs = [tokenizer.encode(t.text, add_special_tokens=False) + [tokenizer.eos_token_id] for t in traces]
    prompts = ["Q: " + (t.question or "a problem")[:200] + "\n" for t in traces]
    total = sum(len(r) for r in refs)
    rows = []
    # warm the constraint's caches and the model once (not timed)
    generate(model, tokenizer, prompts[:batch], lambda i: Constraint(compiled, make_config(levels)),
             reference=refs[:batch], max_new_tokens=max(len(r) for r in refs[:batch]) + 1)
    for name, constrained, ff in (("unconstrained", False, False), ("constrained", True, False),
                                  ("constrained+fast-forward", True, True)):
        t0 = time.perf_counter()
        passes = 0
        same = True
        for s in range(0, len(refs), batch):
            chunk = refs[s:s + batch]
            factory = (lambda i: Constraint(compiled, make_config(levels))) if constrained else None
            res = generate(model, tokenizer, prompts[s:s + batch], factory, reference=chunk,
                           max_new_tokens=max(len(r) for r in chunk) + 1, fast_forward=ff)
            passes += res[0].forward_passes
            same &= all(r.token_ids == ref for r, ref in zip(res, chunk, strict=True))
        dt = time.perf_counter() - t0
        rows.append({"mode": name, "seconds": dt, "tokens": total, "tokens_per_second": total / dt,
                     "forward_passes": passes, "same_tokens_as_reference": same})
    return rows


def write_json(path: str | Path, data: object) -> None:
    from ..fileio import atomic_write

    with atomic_write(path) as fh:
        fh.write(json.dumps(data, indent=2) + "\n")
