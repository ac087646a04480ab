"""A directory of templates: pools (``pools/*.toml``, else the parent directory's), templates and
distractors (``*.toml``; subdirectories are other libraries, such as ``heldout/``).

Files are read in sorted order, so a library (and everything sampled from it) is the same on
every machine. Chaining is indexed here: which templates can take an earlier answer of a kind.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from ..fileio import InputError, read_text
from ..paths import TEMPLATES
from .pools import Pool, PoolEntry, PoolError, load_pools
from .template import Template, TemplateError, VarSpec, check_slots, compile_template, phrases, var_spec
from .text import Format, Text


@dataclass
class Distractor:
    """An irrelevant sentence. ``{name}`` (when not a variable of its own) is the record's protagonist."""

    texts: list[Text]
    vars: dict[str, VarSpec]
    where: str

    @property
    def needs_protagonist(self) -> bool:
        return any("name" in t.vars for t in self.texts) and "name" not in self.vars

    def sample(self, rng: Random, protagonist: PoolEntry | None, used: set[int]) -> tuple[Text, dict] | None:
        env: dict[str, object] = {}
        if self.needs_protagonist:
            if protagonist is None:
                return None
            env["name"] = protagonist
        for spec in self.vars.values():
            value = spec.draw(rng, env, used)
            if value is None:
                return None
            env[spec.name] = value
        for v in env.values():
            if isinstance(v, PoolEntry) and v is not protagonist:
                used.add(id(v))
        return self.texts[rng.randrange(len(self.texts))], env


@dataclass
class Library:
    templates: list[Template]
    pools: dict[str, Pool]
    distractors: list[Distractor] = field(default_factory=list)
    root: str = ""

    def __post_init__(self) -> None:
        self.by_id = {t.id: t for t in self.templates}
        # kind -> [(template, fed variable)]: who can continue a chain whose last answer has that kind
        self.consumers: dict[str, list[tuple[Template, str]]] = {}
        for t in self.templates:
            for var, kind in t.feed.items():
                self.consumers.setdefault(kind, []).append((t, var))
        self.starters = [t for t in self.templates if t.output in self.consumers]

    @classmethod
    def load(cls, root: str | Path = TEMPLATES, errors: list[str] | None = None) -> Library:
        """Load a template directory. With ``errors`` given, a template that does not compile is
        reported there and skipped (lint goes on to the others); without, the first one raises."""
        root = Path(root)
        if not root.is_dir():
            raise TemplateError(f"{root}: not a directory of templates")
        # A directory without pools of its own uses its parent's: corpora/templates/heldout, the
        # generalisation set's templates, draws from the same people and things as training.
        pool_dir = root / "pools" if (root / "pools").is_dir() else root.parent / "pools"
        try:
            pools = load_pools(sorted(pool_dir.glob("*.toml")))
        except PoolError as err:
            raise TemplateError(str(err)) from None
        templates: list[Template] = []
        distractors: list[Distractor] = []
        for path in sorted(root.glob("*.toml")):
            try:
                source = read_text(path, 1 << 22)  # a template file is a few kilobytes
                data = tomllib.loads(source)
            except tomllib.TOMLDecodeError as err:
                raise TemplateError(f"{path}: {err}") from None
            except InputError as err:
                raise TemplateError(f"cannot read {err}") from None
            unknown = set(data) - {"template", "distractor"}
            if unknown:
                raise TemplateError(f"{path}: unknown table `{sorted(unknown)[0]}` (files hold [[template]] "
                                    "and [[distractor]] tables)")
            for i, raw in enumerate(_tables(data.get("template", []), path, "template")):
                try:
                    templates.append(compile_template(raw, pools, str(path), source, i))
                except TemplateError as err:
                    if errors is None:
                        raise
                    errors.append(str(err))
            for i, raw in enumerate(_tables(data.get("distractor", []), path, "distractor")):
                try:
                    distractors.append(_distractor(raw, pools, f"{path}: distractor {i + 1}"))
                except TemplateError as err:
                    if errors is None:
                        raise
                    errors.append(str(err))
        seen: dict[str, Template] = {}
        for t in templates:
            if t.id in seen:
                raise TemplateError(f"{t.where}: the id is also used at {seen[t.id].path}:{seen[t.id].line}")
            seen[t.id] = t
        if not templates:
            raise TemplateError(f"{root}: no templates (*.toml files with [[template]] tables)")
        return cls(templates, pools, distractors, str(root))


def _tables(value: object, path: Path, what: str) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise TemplateError(f"{path}: `{what}` must be an array of tables ([[{what}]])")
    return value


def _distractor(raw: dict, pools: dict[str, Pool], where: str) -> Distractor:
    unknown = set(raw) - {"text", "vars"}
    if unknown:
        raise TemplateError(f"{where}: unknown key `{sorted(unknown)[0]}` (a distractor has `text` and `vars`)")
    if "text" not in raw:
        raise TemplateError(f"{where}: missing `text`")
    texts = phrases(raw["text"], where, "text")
    raw_vars = raw.get("vars", {})
    if not isinstance(raw_vars, dict):
        raise TemplateError(f"{where}: `vars` is a table")
    specs = {name: var_spec(name, value, pools, where) for name, value in raw_vars.items()}
    if any(s.kind == "expr" for s in specs.values()):
        raise TemplateError(f"{where}: distractor variables are drawn, not derived (no `expr`)")
    people = pools.get("people")
    known = dict(specs)
    if "name" not in known and people is not None:
        known["name"] = VarSpec("name", "pool", Format(), pool=people)
    check_slots(known, texts, where)
    return Distractor(texts, specs, where)
