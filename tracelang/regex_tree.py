"""A grammar terminal's regex as a tree, for the decoder's automaton and the grammar exports.

The tree has the shape of the standard library's own regex parse (``re``'s parser), which this
module reproduces for the part of the syntax the grammar's terminals use — literals, escapes,
classes, groups, alternation, the repeats — with its simplifications (a prefix common to every
alternative is taken out, alternatives of single characters become one class, a one-character
class becomes that character, a non-capturing group is spliced in), so the automaton built from
it is the same state for state. That parser is a private module of ``re``; this one is ours.
Anything else (anchors, look-arounds, back-references, flags) is a ``ValueError``.

A node is ``(op, arg)`` with ``op`` one of ``LITERAL``, ``NOT_LITERAL``, ``ANY``, ``IN`` (class
items: ``LITERAL``, ``RANGE``, ``NEGATE``, ``CATEGORY``), ``SUBPATTERN`` ((group, 0, 0, nodes)),
``BRANCH`` ((None, [nodes, ...])), ``MAX_REPEAT`` / ``MIN_REPEAT`` ((min, max, nodes)); ``max`` is
``MAXREPEAT`` when unbounded.
"""

from __future__ import annotations

MAXREPEAT = 4294967295  # an unbounded repeat (the value ``re`` uses)

Node = tuple[str, object]
_ESCAPES = {"\\a": 7, "\\b": 8, "\\f": 12, "\\n": 10, "\\r": 13, "\\t": 9, "\\v": 11, "\\\\": 92}
_CATEGORIES = {"\\d": "CATEGORY_DIGIT", "\\D": "CATEGORY_NOT_DIGIT", "\\s": "CATEGORY_SPACE",
               "\\S": "CATEGORY_NOT_SPACE", "\\w": "CATEGORY_WORD", "\\W": "CATEGORY_NOT_WORD"}
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_SPECIAL = frozenset(".\\[{()*+?^$|")


class _Source:
    """The pattern as a stream of units: a character, or a backslash with the character after it."""

    def __init__(self, text: str):
        self.text, self.index = text, 0
        self.next: str | None = None
        self._advance()

    def _advance(self) -> None:
        if self.index >= len(self.text):
            self.next = None
            return
        unit = self.text[self.index]
        if unit == "\\":
            if self.index + 1 >= len(self.text):
                raise ValueError(f"regex {self.text!r}: a backslash at the end")
            unit += self.text[self.index + 1]
        self.index += len(unit)
        self.next = unit

    def get(self) -> str | None:
        unit = self.next
        self._advance()
        return unit

    def match(self, unit: str) -> bool:
        if self.next == unit:
            self._advance()
            return True
        return False

    def error(self, what: str) -> ValueError:
        return ValueError(f"regex {self.text!r} at {self.index}: {what}")


def parse(pattern: str) -> list[Node]:
    """The tree of ``pattern``; ValueError for syntax the grammar's terminals do not use."""
    source = _Source(pattern)
    groups = [0]
    tree = _alternation(source, groups)
    if source.next is not None:
        raise source.error(f"unbalanced {source.next!r}")
    return tree


def _escape(source: _Source, unit: str, in_class: bool) -> Node:
    if not in_class and unit in ("\\A", "\\b", "\\B", "\\Z"):
        raise source.error(f"unsupported anchor {unit}")
    if unit in _ESCAPES:
        return "LITERAL", _ESCAPES[unit]
    if unit in _CATEGORIES:
        return "IN", [("CATEGORY", _CATEGORIES[unit])]
    if unit[1] in _LETTERS:
        raise source.error(f"unsupported escape {unit}")
    return "LITERAL", ord(unit[1])


def _alternation(source: _Source, groups: list[int]) -> list[Node]:
    items = [_sequence(source, groups)]
    while source.match("|"):
        items.append(_sequence(source, groups))
    if len(items) == 1:
        return items[0]
    out: list[Node] = []
    while all(items) and all(item[0] == items[0][0] for item in items):  # a prefix every alternative has
        out.append(items[0][0])
        for item in items:
            del item[0]
    chars: list = []
    for item in items:
        if len(item) != 1:
            break
        op, arg = item[0]
        if op == "LITERAL":
            chars.append((op, arg))
        elif op == "IN" and arg[0][0] != "NEGATE":  # type: ignore[index]
            chars.extend(arg)  # type: ignore[arg-type]
        else:
            break
    else:
        out.append(("IN", list(dict.fromkeys(chars))))
        return out
    out.append(("BRANCH", (None, items)))
    return out


def _sequence(source: _Source, groups: list[int]) -> list[Node]:
    out: list[Node] = []
    while source.next is not None and source.next not in "|)":
        unit = source.get()
        assert unit is not None
        if unit[0] == "\\":
            out.append(_escape(source, unit, False))
        elif unit not in _SPECIAL:
            out.append(("LITERAL", ord(unit)))
        elif unit == "[":
            out.append(_class(source))
        elif unit in "*+?{":
            _repeat(source, unit, out)
        elif unit == ".":
            out.append(("ANY", None))
        elif unit == "(":
            group: int | None = None
            if source.match("?"):
                if not source.match(":"):
                    raise source.error("only (?:...) groups are supported")
            else:
                groups[0] += 1
                group = groups[0]
            inner = _alternation(source, groups)
            if not source.match(")"):
                raise source.error("missing )")
            out.append(("SUBPATTERN", (group, 0, 0, inner)))
        else:
            raise source.error(f"unsupported {unit!r}")
    # a non-capturing group is spliced into its sequence (after a repeat has taken what it repeats)
    for i in range(len(out) - 1, -1, -1):
        op, arg = out[i]
        if op == "SUBPATTERN" and arg[0] is None:  # type: ignore[index]
            out[i:i + 1] = arg[3]  # type: ignore[index]
    return out


def _class(source: _Source) -> Node:
    negate = source.match("^")
    items: list = []
    while True:
        unit = source.get()
        if unit is None:
            raise source.error("unterminated class")
        if unit == "]" and items:
            break
        first = _class_item(source, unit)
        if source.match("-"):
            that = source.get()
            if that is None:
                raise source.error("unterminated class")
            if that == "]":
                items += [first, ("LITERAL", ord("-"))]
                break
            last = _class_item(source, that)
            if first[0] != "LITERAL" or last[0] != "LITERAL" or last[1] < first[1]:  # type: ignore[operator]
                raise source.error(f"bad range {unit}-{that}")
            items.append(("RANGE", (first[1], last[1])))
        else:
            items.append(first)
    items = list(dict.fromkeys(items))
    if len(items) == 1 and items[0][0] == "LITERAL":
        return ("NOT_LITERAL", items[0][1]) if negate else items[0]
    return "IN", [("NEGATE", None), *items] if negate else items


def _class_item(source: _Source, unit: str) -> Node:
    if unit[0] != "\\":
        return "LITERAL", ord(unit)
    node = _escape(source, unit, True)
    return node[1][0] if node[0] == "IN" else node  # type: ignore[index,return-value]


def _repeat(source: _Source, unit: str, out: list[Node]) -> None:
    if unit == "{":
        lo = hi = ""
        while source.next is not None and source.next.isdigit():
            lo += source.get()  # type: ignore[operator]
        if source.match(","):
            while source.next is not None and source.next.isdigit():
                hi += source.get()  # type: ignore[operator]
        else:
            hi = lo
        if not source.match("}"):
            raise source.error("unsupported {")
        low, high = int(lo or 0), int(hi) if hi else MAXREPEAT
    else:
        low, high = {"*": (0, MAXREPEAT), "+": (1, MAXREPEAT), "?": (0, 1)}[unit]
    if not out or out[-1][0] in ("MAX_REPEAT", "MIN_REPEAT"):
        raise source.error("nothing to repeat")
    item: list[Node] = out[-1:]
    if item[0][0] == "SUBPATTERN" and item[0][1][0] is None:  # type: ignore[index]
        item = item[0][1][3]  # type: ignore[index]
    out[-1] = ("MIN_REPEAT" if source.match("?") else "MAX_REPEAT", (low, high, item))
