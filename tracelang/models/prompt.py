"""The one prompt format, shared by inference, SFT and RL (versioned: a trained checkpoint records
the version it was trained with). A chat template is used where the tokenizer has one; otherwise a
plain format. The trace always starts right after the prompt, so the constrained decoder starts at
the grammar's first symbol, and SFT's loss covers exactly the trace and the end-of-sequence token.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TracelangError, UsageError

PROMPT_VERSION = "tracelang-prompt-v1"
# The same format without the instruction preamble: a model trained on traces does not need to be
# told what to write, and the preamble is a fifth of a training example's tokens (70 of ~320).
BARE_PROMPT_VERSION = "tracelang-prompt-v1-bare"
# The surface the trace is written in is part of the version: a model trained on the compact
# surface is prompted (its shots too) and decoded in it. The YAML keeps the versions it had.
COMPACT_SUFFIX = "-compact"
PROMPT_VERSIONS = (PROMPT_VERSION, BARE_PROMPT_VERSION, PROMPT_VERSION + COMPACT_SUFFIX,
                   BARE_PROMPT_VERSION + COMPACT_SUFFIX)

INSTRUCTIONS = (
    "Solve the math problem by writing a tracelang trace: name each quantity of the problem with an "
    "`init` step, combine them with `compute` steps (add, sub, mul, div, ...), and end with a `query` "
    "of the answer. Do not do arithmetic yourself: the runtime computes every step exactly."
)
COMPACT_INSTRUCTIONS = (
    "Solve the math problem by writing a tracelang trace in its compact form: after the `expert` line, "
    "name each quantity of the problem with a line `NUMBER -> name`, combine them with lines like "
    "`mul(a, b) -> name` (add, sub, mul, div, ...), and end with `return name` for the answer. Do not do "
    "arithmetic yourself: the runtime computes every step exactly."
)


def surface_of_version(version: str | None) -> str:
    """The surface a prompt version's traces are written in."""
    return "compact" if version is not None and version.endswith(COMPACT_SUFFIX) else "yaml"

# An exported model's chat template starts with this comment and its prompt version: it renders the
# trained prompt around the question by itself (tracelang.training.model_card).
TEMPLATE_MARKER = "{#- tracelang prompt: "


def owned_prompt_version(tokenizer: Any) -> str | None:
    """The prompt version a tokenizer's chat template renders by itself (an exported model), or None."""
    template = getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str) or not template.startswith(TEMPLATE_MARKER):
        return None
    return template[len(TEMPLATE_MARKER):].split(":", 1)[0]


TEMPLATE_SECONDS = 10  # a real chat template renders in milliseconds


class PromptError(UsageError, ValueError):
    """A chat template that cannot render a prompt: one line for the user, not a jinja2 traceback."""


class _TemplateTimeout(TracelangError):
    """Raised by the alarm inside a template's render (a jinja2 template cannot catch it)."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """SIGALRM after ``seconds`` (main thread only; elsewhere no limit), restoring any timer that was set."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise _TemplateTimeout

    old_handler = signal.signal(signal.SIGALRM, expired)
    old_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay:  # an outer timer keeps running, less what this took
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - (time.monotonic() - start), 1e-3))


@dataclass
class Prompter:
    tokenizer: Any
    shots: list[dict] = field(default_factory=list)  # records with `question` and `trace`
    instructions: bool = True  # the preamble; False for models trained without it
    surface: str = "yaml"  # the surface of the traces: the shots' and the one the model writes

    def __post_init__(self) -> None:
        from ..compact import SURFACES

        if self.surface not in SURFACES:
            raise ValueError(f"unknown surface {self.surface!r} (surfaces: {', '.join(SURFACES)})")
        if self.surface != "yaml":
            self.shots = [{**shot, "trace": _written(shot["trace"], self.surface)} for shot in self.shots]

    @property
    def version(self) -> str:
        base = PROMPT_VERSION if self.instructions else BARE_PROMPT_VERSION
        return owned_prompt_version(self.tokenizer) or base + (COMPACT_SUFFIX if self.surface == "compact" else "")

    @classmethod
    def for_version(cls, tokenizer: Any, version: str | None, shots: list[dict] | None = None,
                    surface: str | None = None) -> Prompter:
        """The prompter a model was trained with (``None``: the default, with the preamble); its
        surface is the version's unless ``surface`` says otherwise."""
        if version not in (None, *PROMPT_VERSIONS):
            raise ValueError(f"unknown prompt version {version!r} (known: {', '.join(PROMPT_VERSIONS)})")
        bare = version is not None and version.startswith(BARE_PROMPT_VERSION)
        return cls(tokenizer, list(shots or []), instructions=not bare,
                   surface=surface or surface_of_version(version))

    @property
    def chat(self) -> bool:
        return getattr(self.tokenizer, "chat_template", None) is not None

    @property
    def _instructions(self) -> str:
        return COMPACT_INSTRUCTIONS if self.surface == "compact" else INSTRUCTIONS

    def _preamble(self, text: str) -> str:
        return self._instructions + "\n\n" + text if self.instructions else text

    def prompt(self, question: str) -> str:
        if owned_prompt_version(self.tokenizer):  # an exported model: its template is the trained prompt
            if self.shots:
                raise ValueError("this model's chat template is the prompt it was trained with; it takes no shots")
            return self._render([{"role": "user", "content": question}])
        if self.chat:
            messages = []
            for i, shot in enumerate(self.shots):
                user = f"Question: {shot['question'].strip()}"
                messages += [{"role": "user", "content": self._preamble(user) if i == 0 else user},
                             {"role": "assistant", "content": shot["trace"]}]
            user = f"Question: {question.strip()}"
            messages.append({"role": "user", "content": user if self.shots else self._preamble(user)})
            return self._render(messages)
        parts = [self._instructions, ""] if self.instructions else []
        for shot in self.shots:
            parts += [f"Question: {shot['question'].strip()}", "Trace:", shot["trace"].rstrip("\n"), ""]
        parts += [f"Question: {question.strip()}", "Trace:", ""]
        return "\n".join(parts)

    def _render(self, messages: list[dict[str, str]]) -> str:
        """The chat template applied, within ``TEMPLATE_SECONDS`` (a template is code the model
        ships: a loop of 10¹⁰ iterations must not hang `solve`) and with a template error (the
        sandbox refusing an attribute, a syntax error) as one ``PromptError`` naming it."""
        with _time_limit(TEMPLATE_SECONDS):
            try:
                return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except _TemplateTimeout:
                raise PromptError(f"the tokenizer's chat template did not finish within {TEMPLATE_SECONDS} s") \
                    from None
            except Exception as err:  # jinja2: SecurityError, TemplateSyntaxError, its raise_exception
                if type(err).__module__.split(".")[0] != "jinja2" and "TemplateError" not in type(err).__name__:
                    raise
                raise PromptError(f"the tokenizer's chat template fails: {type(err).__name__}: {str(err)[:200]}") \
                    from None

    def stop_strings(self) -> list[str]:
        """Where an unconstrained completion has clearly left the trace (the plain format's next shot)."""
        return ["\nQuestion:", "\n\n"]


def _written(trace: str, surface: str) -> str:
    """A shot's trace in ``surface`` (as it is, if it does not parse whole)."""
    from ..formatter import format_program
    from ..pipeline import parse

    report = parse(trace)
    if report.program is None or not report.complete:
        return trace
    return format_program(report.program, surface=surface)


def load_shots(path: str | Path, k: int, seed: int = 0) -> list[dict]:
    """``k`` records with a question and a trace, drawn deterministically, one per expert first."""
    from ..fileio import read_jsonl  # the one JSON Lines reader: errors name file, line, column

    records = [obj for _, obj in read_jsonl(path)]
    records = [r for r in records if isinstance(r.get("question"), str) and isinstance(r.get("trace"), str)]
    rng = random.Random(seed)
    rng.shuffle(records)
    chosen: list[dict] = []
    seen: set[str] = set()
    for r in records:  # variety of experts before repeats
        if len(chosen) < k and r.get("expert") not in seen:
            chosen.append(r)
            seen.add(r.get("expert"))
    for r in records:
        if len(chosen) >= k:
            break
        if r not in chosen:
            chosen.append(r)
    return chosen[:k]
