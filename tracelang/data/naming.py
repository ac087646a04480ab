"""Variable names for a question's quantities and a solution's results, from the words around them.

"sold clips to 48 of her friends in April" -> ``friends_in_april``; "earns $12 an hour" ->
``dollars_per_hour``; "a 25% discount" -> ``discount_percent``; "a game that costs $60" ->
``game_cost``; "half that amount" -> ``half_amount``.

A name keeps the words that relate its quantity to the others, because those are the words that
decide the operation and a model learns the operation from them: comparatives ("15 more girls than
boys" -> ``more_girls_than_boys``), direction ("5 children got off" -> ``children_got_off``, "gave
away 3 marbles" -> ``marbles_gave_away``), rate ("pages_per_day") and time ("12 marbles at first" ->
``marbles_at_first``, "3 left" -> ``left``). ``step_name`` names a computed value from the solution
line that computes it ("sold 48/2 = <<48/2=24>>24 clips in May" -> ``clips_in_may``).
``relation_words`` measures how often a trace's names carry such words.

Names are snake_case ASCII, valid trace NAMEs, never ``result`` or ``stepN``, and deduplicated by
``Namer``.
"""

from __future__ import annotations

import re

from ..grounding import Quantity
from ..numbers import Exact, render


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP = _wordset("""
a an the of her his their its my your our to in on at for with and or but is are was were be been being
has have had it this that these those each every as than by from into about more less some all many much
how what when where if then so she he they we i you which who whom there will would can could does do did
also only just still now already total another other same such one while after before during until up out
over under again per twice half off most least both either any no not very really them him us me
get gets got make makes made take takes took give gives gave buy buys bought sell sells sold cost costs
pay pays paid spend spends spent needs need wants want uses use used left remaining well plus minus times
because equals equal since means therefore thus hence substituting dividing multiplying adding subtracting
""")
# Words that may stand between a number and its noun ("48 of her friends", "5 more apples").
LEAD_WORDS = _wordset("of the a an her his their its my your our more extra additional new other full whole "
                       "total different such")
COST_WORDS = _wordset("cost costs costing priced price prices pay pays paid charge charges charged spend spends "
                       "spent sell sells sold buy buys bought earn earns earned")
_FUNCTION_WORDS = _wordset("""
i you he she it we they them him her us me this that these those there who which what a an the of to in on at
for with by from into and or but so then if than as is are was were be been being has have had do does did
will would can could his their its my your our each every all some any more less most least
""")
RATE_WORDS = frozenset({"a", "an", "per", "each", "every"})
UNITS_OF_RATE = _wordset("""
second minute hour day night week weekend month year mile kilometer km meter foot feet yard inch pound kilogram
gallon liter ounce cup page piece item person student kid child game class session lesson visit trip
lap round box bag pack batch dozen serving slice shift ticket
""")
PLURAL_DENOMINATORS = {2: "halves", 3: "thirds", 4: "quarters", 5: "fifths", 6: "sixths", 8: "eighths",
                       10: "tenths", 100: "hundredths"}
_TOKEN = re.compile(r"[A-Za-z]+(?:'s)?|[0-9]+(?:[.,/][0-9]+)*|[^\sA-Za-z0-9]")
_BREAK = frozenset(".,;:?!()\"")
MAX_WORDS = 3
MAX_CHARS = 40
COMPARATIVES = _wordset("more fewer less extra")
MULTIPLIER_WORDS = _wordset("twice double triple thrice half times quarter third")
# Verbs that say which way a quantity moves: "gave away 5", "5 got off", "lost 3", "received 6".
DIRECTION_VERBS = _wordset("""
give gives gave given donate donates donated lose loses lost eat eats ate eaten spend spends spent sell sells sold
use uses used break breaks broke broken throw throws threw drop drops dropped take takes took taken remove removes
removed receive receives received get gets got find finds found buy buys bought win wins won earn earns earned
borrow borrows borrowed add adds added return returns returned save saves saved lend lends lent
""")
PARTICLES = _wordset("away back off on out")
# "at first", "in all", "left over": when, or over what, a quantity holds
TIME_TAILS: tuple[tuple[str, ...], ...] = (
    ("at", "first"), ("at", "the", "start"), ("at", "the", "beginning"), ("at", "the", "end"), ("in", "all"),
    ("in", "total"), ("left", "over"), ("left",), ("remaining",), ("now",), ("altogether",), ("together",),
    ("initially",), ("originally",), ("in", "the", "end"),
)
CALENDAR = _wordset("""
monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
september october november december morning afternoon evening yesterday today tomorrow
""")
_BREAK_WORDS = _wordset("and or but than if when while because so")
_AUXILIARY = _wordset("is are was were be been has have had will would")
_OBJECTS = _wordset("her him them it me us you")
# The words that decide an operation, for the rate ``relation_words`` measures.
RELATION_WORDS = COMPARATIVES | MULTIPLIER_WORDS | DIRECTION_VERBS | _wordset(
    "than away off on back each per every first start beginning end left remaining now all total altogether "
    "together initially originally over")
RESERVED = re.compile(r"result|step[0-9]+|prev|sub[0-9]+")


def _clean(word: str) -> str:
    word = word.lower()
    return word[:-2] if word.endswith("'s") else word


def _words_after(text: str, end: int) -> list[str]:
    out = []
    for m in _TOKEN.finditer(text, end):
        tok = m.group(0)
        if tok in _BREAK or tok[0].isdigit() or tok == "$":
            break
        if tok == "-":
            continue
        out.append(_clean(tok))
        if len(out) >= 8:
            break
    return out


def _words_before(text: str, start: int) -> list[str]:
    out = []
    for tok in reversed([m.group(0) for m in _TOKEN.finditer(text[max(0, start - 200):start])]):
        if tok in _BREAK or tok[0].isdigit():
            break
        if tok in ("-", "$"):
            continue
        out.append(_clean(tok))
        if len(out) >= 6:
            break
    return list(reversed(out))


def _noun_after(words: list[str]) -> list[str]:
    """The noun phrase right after a number: content words, after at most a few lead words."""
    out: list[str] = []
    for w in words:
        if not out and w in LEAD_WORDS:
            continue
        if w in STOP or len(w) < 2 or w in PARTICLES:  # "gives 5 away": no noun
            break
        out.append(w)
        if len(out) == MAX_WORDS:
            break
    return out


def _noun_before(words: list[str]) -> tuple[list[str], bool]:
    """The nearest content word before a number (else the nearest verb, "sells 30 of them"), and
    whether a cost verb stands between them."""
    costly = False
    for w in reversed(words):
        if w in COST_WORDS:
            costly = True
        if w in STOP or len(w) < 2:
            continue
        return [w], costly
    verbs = [w for w in words if w not in _FUNCTION_WORDS and len(w) > 2]
    return verbs[-1:], costly


def _first_content(words: list[str]) -> list[str]:
    return [w for w in words if w not in STOP and len(w) > 1][:1]


def _rate(words: list[str]) -> str | None:
    """"an hour", "per week", "each day" at the start of ``words``: the unit of a rate."""
    if len(words) >= 2 and words[0] in RATE_WORDS and words[1] not in STOP \
            and (words[0] == "per" or words[1].rstrip("s") in UNITS_OF_RATE):
        return words[1]
    return None


def _tail(words: list[str]) -> list[str]:
    """The relation words at the start of ``words``, the text after a quantity's noun: "than boys",
    "got off", "were left", "at first", "in April"; [] when there are none."""
    k = 0
    while k < len(words) and k < 2 and words[k] in _AUXILIARY:  # "5 apples were left"
        k += 1
    rest = words[k:]
    if not rest:
        return []
    if rest[0] == "than":
        other = [w for w in rest[1:4] if w not in LEAD_WORDS and w not in _FUNCTION_WORDS][:1]
        return ["than", *other] if other else []
    if rest[0] in DIRECTION_VERBS and k == 0:
        return rest[:2] if rest[1:2] and rest[1] in PARTICLES else rest[:1]
    for at in range(min(len(rest), 4)):  # "20 children on the bus at first"
        for tail in TIME_TAILS:
            if tuple(rest[at:at + len(tail)]) == tail:
                return [w for w in tail if w != "the"]
        if rest[at] in _BREAK_WORDS:
            break
    if k == 0 and len(rest) >= 2 and rest[0] in ("in", "on") and rest[1] in CALENDAR:
        return rest[:2]
    if k == 0 and rest[0] in CALENDAR:
        return rest[:1]
    return []


def _direction_before(words: list[str]) -> list[str]:
    """A direction verb right before a number: "gave away 5" -> [gave, away], "ate 4" -> [ate],
    "gave her 5" -> [gave]."""
    tail = words[-3:]
    while tail and (tail[-1] in _OBJECTS or tail[-1] in ("a", "an", "the", "another")):
        tail = tail[:-1]
    if len(tail) >= 2 and tail[-1] in PARTICLES and tail[-2] in DIRECTION_VERBS:
        return tail[-2:]
    if tail and tail[-1] in DIRECTION_VERBS:
        return tail[-1:]
    return []


def _each(after: list[str], noun: list[str], before: list[str]) -> list[str]:
    """The rate that "each" gives a quantity: "$5 each", "8 hours each" -> [each]; "each box holds 6
    cups" -> [per, box]; [] otherwise. "each" decides a mul, so the name keeps it (issue 26)."""
    at = after.index(noun[-1]) + 1 if noun and noun[-1] in after else 0
    if after[at:at + 1] == ["each"]:
        return ["each"]
    for i, w in enumerate(before[:-1]):
        determiner = i == 0 or before[i - 1] in STOP  # "boxes each hold 6": each is no determiner there
        if w in ("each", "every") and determiner and before[i + 1] not in STOP and len(before[i + 1]) > 1:
            return ["per", before[i + 1]]
    return []


def phrase(words: list[str]) -> list[str]:
    """The noun phrase at the start of ``words`` with the relation words around it: a comparative
    before the noun ("more girls than boys") and a tail after it ("children got off")."""
    head, tail = _phrase(words)
    return head + tail


def _phrase(words: list[str]) -> tuple[list[str], list[str]]:
    comparative = words[:1] if words[:1] and words[0] in COMPARATIVES else []
    noun = _noun_after(words[len(comparative):])
    if not noun:
        return comparative, _tail(words[len(comparative):])
    return comparative + noun, _tail(words[words.index(noun[-1], len(comparative)) + 1:])


def base_name(question: str, q: Quantity) -> str:
    """A name for quantity ``q`` of ``question`` (not yet deduplicated)."""
    after = _words_after(question, q.end)
    unit = _rate(after)
    noun, tail = ([], []) if unit is not None else _phrase(after)  # "$12 an hour": no noun of its own
    if noun and unit is None:
        unit = _rate(after[after.index(noun[-1]) + 1:]) if noun[-1] in after else None
    text = q.text.lower()
    if q.kind == "multiplier":
        parts = [text]
    elif q.kind == "count":
        days = re.search(r"day|monday|tuesday|wednesday|thursday|friday|saturday|sunday", text)
        parts = ["days" if days else "members"]
    elif q.kind == "fraction" and text[0].isalpha():  # "half that amount", "two-thirds of the class"
        parts = [text] + noun[:1]
    elif after[:1] == ["times"]:
        parts = ["times"]
    elif q.kind == "percent" and after[:1] == ["off"]:  # "30% off"
        parts = ["discount"]
    elif noun or tail:
        parts = noun
    elif after[:1] and after[0] in ("more", "extra", "additional", "less", "fewer"):  # "9 more."
        parts = after[:1]
    elif q.kind == "percent" and _first_content(after[:4]):  # "40% are girls"
        parts = _first_content(after[:4])
    else:
        before, costly = _noun_before(_words_before(question, q.start))
        if q.kind == "money":
            parts = [w for w in before if w not in COST_WORDS] + ["cost" if costly else "dollars"] if before else \
                ["cents" if "cent" in text or "¢" in text else "dollars"]
        else:
            parts = before
    if q.kind not in ("multiplier", "count"):
        moved = [] if set(parts) & DIRECTION_VERBS else _direction_before(_words_before(question, q.start))
        parts = parts + moved + tail  # "sold 48 clips in April": clips_sold_in_april
        if set(parts) & DIRECTION_VERBS and after[:1] and after[0] in PARTICLES and after[0] not in parts:
            parts.append(after[0])  # "gives 5 away"
    if unit and unit not in parts:
        parts += ["per", unit]
    elif unit is None and q.kind not in ("multiplier", "count", "percent", "fraction"):
        each = _each(after, noun, _words_before(question, q.start))
        if not set(each) - {"per"} <= set(parts):  # "each bag holds 6 bag apples": no dangling "per"
            parts += each
    if q.kind == "percent":
        parts = [p for p in parts if p not in ("percent", "cent")] + ["percent"]
    elif q.kind == "fraction" and not text[0].isalpha():
        parts = parts + ["fraction"]
    return to_name(parts) or "number_" + render(q.value).replace(".", "_").replace("/", "_over_")


def derived_name(question: str, q: Quantity, value: Exact) -> str:
    """A name for a value derived from quantity ``q`` (0.25 for "25%", 2 for "half", 150 cents)."""
    base = base_name(question, q)
    if q.kind == "percent":
        return f"{base[:-len('_percent')] if base.endswith('_percent') else base}_rate"
    if q.kind == "fraction" and value == q.value.denominator and value in PLURAL_DENOMINATORS:
        return PLURAL_DENOMINATORS[int(value)] if q.text[0].isalpha() else f"{base}_parts"
    if q.kind == "money" and value == q.value * 100:
        return f"{base}_cents"
    return f"{base}_{to_name([render(value)]) or 'value'}"


def context_words(line: str, value: Exact) -> set[str]:
    """Words right after ``value`` where a solution line writes it ("5 runners x 8 hours" -> for 8:
    {"hour"}), singularised; used to tell apart two quantities of the same value."""
    text = render(value)
    out: set[str] = set()
    for m in re.finditer(rf"(?<![0-9.]){re.escape(text)}(?![0-9]|\.[0-9])", line):
        out.update(w.rstrip("s") for w in _noun_after(_words_after(line, m.end())))
    return out


def solution_name(line: str, value: Exact) -> str:
    """A name for a value the solution line writes in prose ("6 x 4 legs" -> ``legs``), or ""."""
    text = render(value)
    for m in re.finditer(rf"(?<![0-9.]){re.escape(text)}(?![0-9]|\.[0-9])", line):
        noun = _noun_after(_words_after(line, m.end()))
        if noun:
            return to_name(noun)
    return ""


_ANNOTATION = re.compile(r"<<[^<>]*>>")
_EXPRESSION_CHARS = frozenset("0123456789.,+-*/x()$%= ")


def step_name(line: str, value: Exact) -> str:
    """A name for the value a solution line computes, from the words after its result ("48/2 =
    <<48/2=24>>24 clips in May" -> ``clips_in_may``), else from the words before its expression
    ("The total cost is 5*3 = <<5*3=15>>15" -> ``total_cost``); "" when the line names nothing."""
    text = re.sub(r"(?<=[0-9]),(?=[0-9]{3})", "", _ANNOTATION.sub(" ", line))
    found = [m for m in re.finditer(rf"(?<![0-9.]){re.escape(render(value))}(?![0-9]|\.[0-9])", text)]
    for m in sorted(found, key=lambda m: "=" not in text[max(0, m.start() - 4):m.start()]):
        words = phrase(_words_after(text, m.end()))
        if words:
            return to_name(words)
        if "=" not in text[max(0, m.start() - 4):m.start()]:
            continue
        start = m.start()
        while start > 0 and text[start - 1] in _EXPRESSION_CHARS:
            start -= 1
        before = [w for w in _words_before(text, start)
                  if len(w) > 1 and (w not in STOP or w in RELATION_WORDS or w in ("cost", "price"))]
        before = before[-MAX_WORDS:]
        if before:
            return to_name(before)
    return ""


def relation_words(question: str, names: list[str]) -> set[str]:
    """The relation words (``RELATION_WORDS``: comparatives, direction, rate, time) that ``names``
    carry and the question says; ``per`` stands for any rate the question states ("an hour")."""
    said = set(_clean(w) for w in re.findall(r"[A-Za-z]+(?:'s)?", question))
    carried = {w for name in names for w in name.split("_")} & RELATION_WORDS
    return {w for w in carried if w in said or w == "per"}


def to_name(parts: list[str]) -> str:
    text = "_".join(parts).lower()
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:MAX_CHARS].rstrip("_")
    if not text:
        return ""
    if text[0].isdigit():
        text = "n_" + text
    return text


class Namer:
    """Hands out unique names; ``result``/``stepN``-like names get a suffix."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def fresh(self, name: str) -> str:
        name = name if not RESERVED.fullmatch(name) else f"{name}_value"
        candidate, n = name, 2
        while candidate in self.taken:
            candidate = f"{name}_{n}"
            n += 1
        self.taken.add(candidate)
        return candidate
