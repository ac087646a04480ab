"""The typed IR: the one truth every stage passes around (text -> IR -> checks -> execution).

Pydantic v2 models, discriminated on ``op``. Field order is the canonical key order, which the
formatter writes and ``grammar/trace.lark``'s canonical rules spell out (a test keeps them equal).
Spans are 1-based and excluded from equality so that formatting round-trips compare on meaning.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema

from .numbers import Exact, parse_literal, render


def _to_exact(value: Any) -> Exact:
    if isinstance(value, Exact):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("an exact number is an integer or a string like '3.5' or '2/3'")
    lit = parse_literal(str(value))
    if lit is None or lit.unreduced:
        raise ValueError(f"not a number literal: {value!r}")
    return lit.value


ExactNumber = Annotated[
    Exact,
    PlainValidator(_to_exact),
    PlainSerializer(render, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?(/[1-9][0-9]*)?$"}),
]


class Span(NamedTuple):
    line: int
    column: int
    end_column: int


class Node(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    span: Span | None = Field(default=None, exclude=True, repr=False)

    def __eq__(self, other: object) -> bool:  # meaning, not position
        return type(self) is type(other) and self.model_dump() == other.model_dump()  # type: ignore[union-attr]

    def __hash__(self) -> int:
        return hash(repr(self.model_dump()))


class Var(Node):
    kind: Literal["var"] = "var"
    name: str


class Num(Node):
    kind: Literal["num"] = "num"
    value: ExactNumber


Arg = Annotated[Union[Var, Num], Field(discriminator="kind")]


class Ref(Node):
    """``prev.result`` or ``subN.result``: the answer of an earlier block."""

    block: str
    field: Literal["result"] = "result"

    def __str__(self) -> str:
        return f"{self.block}.{self.field}"

    def target(self, current: int) -> int | None:
        """The index of the block named, seen from block ``current``; None when it names none (a
        number far past any block is never converted: `sub` and 4,400 digits is no index)."""
        return ref_target(self.block, current)


MAX_REF_DIGITS = 6  # far past the block limit (limits.py), short enough for int() to be instant


def ref_target(block: str, current: int) -> int | None:
    """``prev`` -> ``current - 1``; ``subN`` -> N; anything else (or an absurdly long N) -> None."""
    if block == "prev":
        return current - 1
    digits = block[3:]
    if block.startswith("sub") and digits.isascii() and digits.isdigit() and len(digits) <= MAX_REF_DIGITS:
        return int(digits)
    return None


class Step(Node):
    op: str
    # Which fields define a fresh name, read a defined one, or change a variable in place (an entity
    # op); ``creates``: the changed fields whose variable may be missing, then created holding 0
    # first. The checker reads these instead of knowing each op.
    defines: ClassVar[tuple[str, ...]] = ()
    reads: ClassVar[tuple[str, ...]] = ()
    mutates: ClassVar[tuple[str, ...]] = ()
    creates: ClassVar[tuple[str, ...]] = ()


class InitStep(Step):
    op: Literal["init"] = "init"
    var: Var
    value: Num | None = None
    source: Ref | None = None
    defines: ClassVar = ("var",)


class TableStep(Step):
    """A step that applies a named operation of its op's table (``compute_op``) to ``args``."""

    compute_op: str
    args: list[Arg]
    var: Var
    defines: ClassVar = ("var",)
    reads: ClassVar = ("args",)


class ComputeStep(TableStep):
    op: Literal["compute"] = "compute"


class QueryStep(Step):
    op: Literal["query"] = "query"
    var: Var
    reads: ClassVar = ("var",)


class PercentStep(Step):
    op: Literal["percent_of", "percent_off", "percent_increase"]
    base: Var
    rate: Var
    var: Var
    defines: ClassVar = ("var",)
    reads: ClassVar = ("base", "rate")


class TransferStep(Step):
    op: Literal["transfer"] = "transfer"
    from_entity: Var
    to_entity: Var
    amount: Arg
    reads: ClassVar = ("from_entity", "amount")
    mutates: ClassVar = ("from_entity", "to_entity")
    creates: ClassVar = ("to_entity",)


class ConsumeStep(Step):
    op: Literal["consume"] = "consume"
    entity: Var
    amount: Arg
    reads: ClassVar = ("entity", "amount")
    mutates: ClassVar = ("entity",)


class AddEntityStep(Step):
    op: Literal["add_entity"] = "add_entity"
    entity: Var
    amount: Arg
    reads: ClassVar = ("amount",)
    mutates: ClassVar = ("entity",)
    creates: ClassVar = ("entity",)


class CompareStep(TableStep):
    op: Literal["compare"] = "compare"


AnyStep = Annotated[
    Union[
        InitStep, ComputeStep, QueryStep, PercentStep, TransferStep, ConsumeStep, AddEntityStep, CompareStep
    ],
    Field(discriminator="op"),
]

STEP_TYPES: dict[str, type[Step]] = {}
for _cls in (InitStep, ComputeStep, QueryStep, PercentStep, TransferStep, ConsumeStep, AddEntityStep, CompareStep):
    for _op in _cls.model_fields["op"].annotation.__args__:  # type: ignore[union-attr]
        STEP_TYPES[_op] = _cls


@cache
def step_fields(cls: type[Step]) -> tuple[str, ...]:
    """The fields of a step in canonical order, without ``op`` and ``span``."""
    return tuple(f for f in cls.model_fields if f not in ("op", "span"))


def value_text(value: object) -> str:
    """A field's value as canonical text (a list in brackets)."""
    if isinstance(value, Var):
        return value.name
    if isinstance(value, Num):
        return render(value.value)
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


class Block(Node):
    expert: str
    trace: list[AnyStep]


class Program(Node):
    """A whole trace. A plain trace is one block with ``composed`` false."""

    composed: bool = False
    blocks: list[Block]


M = TypeVar("M", bound=BaseModel)
_DEFAULTS: dict[type, dict[str, Any]] = {}
_set = object.__setattr__  # frozen models refuse their own __setattr__


def make(cls: type[M], **values: Any) -> M:
    """Construct a node from values the builder already checked. Like ``model_construct`` but
    several times faster; building the IR is the hot path of checking a corpus."""
    defaults = _DEFAULTS.get(cls)
    if defaults is None:
        defaults = _DEFAULTS[cls] = {n: f.get_default(call_default_factory=True)
                                     for n, f in cls.model_fields.items() if not f.is_required()}
    node = cls.__new__(cls)
    _set(node, "__dict__", defaults | values)
    _set(node, "__pydantic_fields_set__", set(values))
    _set(node, "__pydantic_extra__", None)
    _set(node, "__pydantic_private__", None)
    return node


def names_in(step: Step, fields: tuple[str, ...]) -> list[Var]:
    """The variables a step holds in the given fields (lists flattened, literals skipped)."""
    out: list[Var] = []
    values = step.__dict__  # plain dict access: the checker calls this for every step
    for name in fields:
        value = values[name]
        if type(value) is list:
            out.extend(item for item in value if type(item) is Var)
        elif type(value) is Var:
            out.append(value)
    return out
