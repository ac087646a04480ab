"""Reading and writing files: traces from ``.yaml`` trace files, ``.jsonl`` corpora or ``-`` for
stdin; the one JSON Lines reader (``read_jsonl``, on ``parse_lines``) and writer (``write_jsonl``);
and writing files atomically so that an interrupted run never leaves a half-written output."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .diagnostics import INVALID_RECORD, Diagnostic
from .errors import UsageError
from .numbers import JsonFloat


class InputError(UsageError):
    """A file that cannot be read at all (missing, a directory, not UTF-8): a usage error."""


class LineError(UsageError, ValueError):
    """One JSON Lines line that is not acceptable JSON; ``column`` is 1-based."""

    def __init__(self, message: str, column: int = 1):
        super().__init__(message)
        self.message, self.column = message, column


MAX_JSON_DEPTH = 64  # a record nests three levels; deeper is hostile, not data

# Every read is bounded before anything parses it (issue 25): a line, a whole file read at once, a
# file read line by line. `/dev/zero` then fails in milliseconds instead of filling the memory.
MAX_LINE_CHARS = 4 << 20  # one JSON Lines line (a record's trace is at most 200,000 characters)
MAX_TEXT_CHARS = 64 << 20  # a file (or stdin) read whole: a trace, a recipe, a template, a settings file
MAX_FILE_CHARS = 1 << 30  # a file read line by line: a corpus, a dataset, a log


def read_text(source: str | Path, limit: int = MAX_TEXT_CHARS, newline: str | None = None) -> str:
    """A whole text file (``-``: stdin) of at most ``limit`` characters; ``InputError`` naming it if it
    is longer, not UTF-8, or cannot be read."""
    try:
        if str(source) == "-":
            text = sys.stdin.read(limit + 1)
        else:
            with open(source, encoding="utf-8", newline=newline) as fh:
                text = fh.read(limit + 1)
    except UnicodeDecodeError as err:
        raise InputError(f"{source}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise InputError(f"{source}: {err.strerror or err}") from None
    if len(text) > limit:
        raise InputError(f"{source}: longer than {limit:,} characters; not read")
    return text


def bounded_lines(fh: IO[str], source: str | Path) -> Iterator[str]:
    """The lines of an open text file (opened with ``newline="\n"``: JSON Lines break at "\n" only),
    each at most ``MAX_LINE_CHARS``, all together at most ``MAX_FILE_CHARS``: ``InputError`` naming
    the file and line past either limit. Not UTF-8 is an ``InputError`` too."""
    total = 0
    n = 0
    try:
        while line := fh.readline(MAX_LINE_CHARS + 1):
            n += 1
            if len(line) > MAX_LINE_CHARS:
                raise InputError(f"{source}:{n}: a line longer than {MAX_LINE_CHARS:,} characters; not read")
            total += len(line)
            if total > MAX_FILE_CHARS:
                raise InputError(f"{source}:{n}: more than {MAX_FILE_CHARS:,} characters; not read")
            yield line
    except UnicodeDecodeError as err:
        raise InputError(f"{source}: not UTF-8 text (byte {err.start})") from None


@contextmanager
def open_lines(source: str | Path) -> Iterator[Iterator[str]]:
    """``bounded_lines`` of a file (``-``: stdin), an ``InputError`` naming it if it cannot be opened."""
    if str(source) == "-":
        yield bounded_lines(sys.stdin, source)
        return
    try:
        fh = open(source, encoding="utf-8", newline="\n")  # noqa: SIM115 - closed below
    except OSError as err:
        raise InputError(f"{source}: {err.strerror or err}") from None
    with fh:
        yield bounded_lines(fh, source)


def _constant(name: str) -> object:
    raise LineError(f"not JSON: `{name}` is not a JSON value (JSON has no NaN or Infinity)")


def loads_line(line: str) -> object:
    """Parse one JSON Lines line. Every way a line can fail is a ``LineError`` with a message for
    the user: malformed JSON, nesting deeper than ``MAX_JSON_DEPTH``, an integer too long for
    Python to convert (over 4,300 digits), ``NaN`` / ``Infinity``, a lone surrogate escape
    (``"\\ud800"``: no text, and unprintable). Never a RecursionError. A number with a fraction or
    exponent is a ``JsonFloat``: a float that keeps its text, so an answer is read exactly."""
    depth = _depth(line)
    if depth > MAX_JSON_DEPTH:
        raise LineError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(line, parse_constant=_constant, parse_float=JsonFloat)
        if _SURROGATE_ESCAPE.search(line) and _has_lone_surrogate(value):
            raise LineError("a lone surrogate escape (\\ud800-\\udfff without its pair) is not text")
        return value
    except json.JSONDecodeError as err:
        raise LineError(f"not JSON: {err.msg}", err.colno) from None
    except RecursionError:
        raise LineError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except LineError:
        raise
    except ValueError as err:  # int('9' * 5000): Python's limit on integer digits
        raise LineError(f"a number too long to read ({str(err).split(';')[0]})") from None


def dumps_line(value: object) -> str:
    """One JSON line, UTF-8 as is except U+2028/U+2029, which are escaped: tools that split lines
    with str.splitlines (or JavaScript) would break a record there."""
    return json.dumps(value, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def splice_field(line: str, key: str, value: str) -> str:
    """``line`` (one JSON object) with the string value of its top-level ``key`` replaced by ``value``
    and every other byte as it was: other fields, their number spellings (``1E2``), duplicated keys,
    escapes and spacing. The last ``key`` counts when it is repeated, as ``json.loads`` reads it.
    ``ValueError`` when the line has no such string field."""
    span = None
    depth, i, n = 0, 0, len(line)
    expect_key = False
    while i < n:
        ch = line[i]
        if ch == '"':
            text, end = json.decoder.scanstring(line, i + 1)
            if depth == 1 and expect_key and text == key:
                j = end
                while j < n and line[j] in " \t\r\n":
                    j += 1
                if j < n and line[j] == ":":
                    j += 1
                    while j < n and line[j] in " \t\r\n":
                        j += 1
                    if j < n and line[j] == '"':
                        _, value_end = json.decoder.scanstring(line, j + 1)
                        span = (j, value_end)
                        i, expect_key = value_end, False
                        continue
            expect_key = False
            i = end
            continue
        if ch in "{[":
            depth += 1
            expect_key = ch == "{" and depth == 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 1:
            expect_key = True
        i += 1
    if span is None:
        raise ValueError(f"no string field `{key}`")
    encoded = json.dumps(value, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return line[:span[0]] + encoded + line[span[1]:]


def parse_lines(lines: Iterable[str]) -> Iterator[tuple[int, object]]:
    """(line number from 1, value) for each non-blank line of a JSON Lines text; a line that is not
    acceptable JSON gives its ``LineError`` as the value, for the caller to report or skip."""
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield n, loads_line(line)
        except LineError as err:
            yield n, err


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON Lines file; ``InputError`` naming
    file, line and column for anything that is not a JSON object (malformed, nested too deep, an
    integer too long to read, NaN/Infinity: see ``loads_line``)."""
    with open_lines(path) as lines:
        for n, value in parse_lines(lines):
            if isinstance(value, LineError):
                raise InputError(f"{path}:{n}:{value.column}: {value.message}")
            if not isinstance(value, dict):
                raise InputError(f"{path}:{n}:1: not a JSON object")
            yield n, value


def write_jsonl(path: str | Path, rows: Iterable[object]) -> int:
    """Write one JSON line per row atomically (all or nothing); returns how many were written."""
    count = 0
    with atomic_write(path) as fh:
        for row in rows:
            fh.write(dumps_line(row) + "\n")
            count += 1
    return count


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # only an escape can put a surrogate in a str here


def _has_lone_surrogate(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _depth(line: str) -> int:
    """The deepest bracket nesting of a JSON text, strings skipped (a cheap linear scan)."""
    if line.count("[") + line.count("{") <= MAX_JSON_DEPTH:
        return 0  # cannot be deeper: the common case costs two counts
    depth = deepest = 0
    in_string = escaped = False
    for ch in line:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


@dataclass
class Item:
    source: str  # the path as given ("-" for stdin)
    index: int  # record number in the file, from 0
    text: str  # the trace text ("" when the record is broken)
    question: str | None = None
    answer: object = None
    file_line: int | None = None  # line of the record in a .jsonl file
    error: Diagnostic | None = None  # a record that is not a valid JSON object with a trace
    record: dict | None = None
    unreadable: bool = False  # stands for a whole source that could not be read (error says why)

    @property
    def location(self) -> str:
        if self.file_line is None:
            return self.source
        return f"{self.source}:{self.file_line} [record {self.index}] trace"


def is_corpus(source: str, text: str | None = None) -> bool:
    if source.endswith(".jsonl"):
        return True
    return source == "-" and text is not None and text.lstrip().startswith("{")


def iter_items(source: str, text: str | None = None) -> Iterator[Item]:
    """Every record of a source: a trace file is one, a corpus (``.jsonl``, or stdin that starts
    with ``{``) one per line, read line by line within the bounds of ``bounded_lines``. ``text``,
    when given, is the source's text, already read."""
    if source.endswith(".jsonl") and text is None:
        with open_lines(source) as lines:
            yield from _corpus_items(source, lines)
        return
    text = read_text(source) if text is None else text
    if not is_corpus(source, text) and not source.endswith(".jsonl"):
        yield Item(source, 0, text)
        return
    # JSON Lines break at "\n" only: str.splitlines would also split inside a string at U+2028
    yield from _corpus_items(source, _checked_lines(text.split("\n"), source))


def _checked_lines(lines: Iterable[str], source: str) -> Iterator[str]:
    for n, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_CHARS:
            raise InputError(f"{source}:{n}: a line longer than {MAX_LINE_CHARS:,} characters; not read")
        yield line


def _corpus_items(source: str, lines: Iterable[str]) -> Iterator[Item]:
    index = 0
    for n, record in parse_lines(lines):
        item = Item(source, index, "", file_line=n)
        index += 1
        if isinstance(record, LineError):
            item.error = Diagnostic(INVALID_RECORD, record.message, n, record.column)
            yield item
            continue
        if not isinstance(record, dict) or not isinstance(record.get("trace"), str):
            item.error = Diagnostic(INVALID_RECORD, "the record has no `trace` string", n, 1)
            yield item
            continue
        item.text, item.record = record["trace"], record
        item.question = record.get("question") if isinstance(record.get("question"), str) else None
        item.answer = record.get("answer")
        yield item


def _identity(path: Path) -> tuple[int, int] | None:
    """The file a path names (st_dev, st_ino), following links; None when nothing is there."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def same_file(a: str | Path | None, b: str | Path | None) -> bool:
    """Whether two paths name one file: the same path once resolved, a link to it, or another hard
    link (the same st_dev and st_ino)."""
    if a is None or b is None or str(a) == "-" or str(b) == "-":
        return False
    pa, pb = Path(a), Path(b)
    ia, ib = _identity(pa), _identity(pb)
    if ia is not None and ib is not None:
        return ia == ib
    try:
        return pa.resolve() == pb.resolve()
    except (OSError, RuntimeError):  # a link loop
        return False


Paths = str | Path | Iterable[str | Path] | None


def _each(value: Paths) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [] if str(value) == "-" or str(value).startswith("hf:") else [Path(value)]
    return [p for v in value for p in _each(v)]


def _option(name: str) -> str:
    return name if name.startswith(("-", "<")) else "--" + name.replace("_", "-")


def refuse_overwriting(inputs: Mapping[str, Paths], outputs: Mapping[str, Paths]) -> None:
    """The one check every command makes before it writes: a ``UsageError`` when an output path
    names an input (resolved, a symlink to it, or a hard link: st_dev/st_ino compared) or another
    output. Keys are option names (``gsm8k_train`` is ``--gsm8k-train``; ``<file>`` stays as is);
    a value is a path, several, or None. An input directory is compared as a whole (an output
    directory that is it) and file by file (an output that is one of its files)."""
    named_in = [(k, p) for k, v in inputs.items() for p in _each(v)]
    named_out = [(k, p) for k, v in outputs.items() for p in _each(v)]
    for i, (ko, po) in enumerate(named_out):
        for ki, pi in named_in:
            if same_file(pi, po) or (pi.is_dir() and not po.is_dir() and _inside(po, pi) and _identity(po)):
                raise UsageError(f"{_option(ko)} {po} is the input {_option(ki)} ({pi}): it would be overwritten")
        for kb, pb in named_out[i + 1:]:
            if same_file(po, pb):
                raise UsageError(f"{_option(ko)} and {_option(kb)} name the same file ({pb})")


def _inside(path: Path, directory: Path) -> bool:
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError):
        return False


# Part files being written, removed if SIGTERM, SIGHUP (and the others below) end the process first: they kill
# without unwinding, so no `finally` would run and a hidden `.NAME.*.part` (up to the whole output)
# would stay behind.
_PARTS: set[str] = set()
# Every signal whose default action ends the process without unwinding (SIGINT unwinds: KeyboardInterrupt).
_CLEANUP_SIGNALS = tuple(s for s in (getattr(signal, name, None) for name in
                                     ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")) if s)
_installed: set[int] = set()  # signals whose default action the cleanup handler stands in for


def _remove_parts_and_die(signum: int, frame: object) -> None:
    for part in list(_PARTS):
        with suppress(OSError):
            os.unlink(part)
    _PARTS.clear()
    signal.signal(signum, signal.SIG_DFL)  # then die of the same signal, as the default action does
    os.kill(os.getpid(), signum)


def _track_part(part: str) -> None:
    """Install the cleanup handlers with the first part file (main thread only: Python's rule), and
    only over the default action (a handler the program set itself, or an ignored signal, stays)."""
    _PARTS.add(part)
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    for signum in _CLEANUP_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_DFL:
            _installed.add(signum)
            signal.signal(signum, _remove_parts_and_die)


def _untrack_part(part: str) -> None:
    _PARTS.discard(part)
    if _PARTS or not _installed or threading.current_thread() is not threading.main_thread():
        return
    for signum in _installed:
        if signal.getsignal(signum) is _remove_parts_and_die:
            signal.signal(signum, signal.SIG_DFL)
    _installed.clear()


@contextmanager
def removed_on_signal(part: str | Path) -> Iterator[None]:
    """While the block runs, a signal of ``_CLEANUP_SIGNALS`` removes ``part`` before the process dies."""
    _track_part(str(part))
    try:
        yield
    finally:
        _untrack_part(str(part))


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", *, through_links: bool = False) -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and move it into place only on success.

    The file at ``path`` is replaced, never written through: a symlink or a hard link there stays
    pointing at what it pointed to, and ``path`` becomes a new file (an output directory may hold
    links planted by someone else). With ``through_links`` (``fmt`` of a file the user named) a
    symlink's target is replaced instead and the link stays. An existing regular file keeps its
    permission bits; a device node or a FIFO (``/dev/stdout``, ``/dev/null``) is written in place,
    never replaced; a directory is an ``IsADirectoryError`` naming the path."""
    given = Path(path)
    follow = through_links or _descriptor_alias(given)
    path = Path(os.path.realpath(given)) if follow else Path(os.path.realpath(given.parent)) / given.name
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    encoding = None if "b" in mode else "utf-8"
    # a device node, a FIFO, a pipe: written in place (through a link only where links are followed)
    if (follow or not given.is_symlink()) and given.exists() and not given.is_file():
        with open(given, mode, encoding=encoding) as fh:
            yield fh
        return
    old_mode = stat.S_IMODE(path.lstat().st_mode) if path.exists() and not path.is_symlink() else None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".part", dir=path.parent)
    except OSError as err:  # one line naming the output and why (the CLI's root prints it, exit 2)
        where = f": {err.filename}" if err.filename and str(err.filename) != str(path.parent) else ""
        raise OSError(err.errno, f"cannot write ({err.strerror}{where})", str(path)) from None
    with removed_on_signal(tmp):
        yield from _write_part(fd, tmp, path, mode, encoding, old_mode)


def _descriptor_alias(path: Path) -> bool:
    """Whether ``path`` is a link to an open descriptor (``/dev/stdout`` -> ``/proc/self/fd/1``): the
    user named the stream, so it is written (or its file replaced), never the link in /dev."""
    for _ in range(8):
        if not path.is_symlink():
            return False
        target = os.readlink(path)
        if target.startswith(("/proc/", "/dev/fd/")):
            return True
        path = path.parent / target
    return False


def append_to(path: str | Path) -> IO[str]:
    """Open a file to append lines, never through a symlink (O_NOFOLLOW: a planted link is an
    OSError naming it, not a write to what it points at)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    return os.fdopen(fd, "a", encoding="utf-8")


def _write_part(fd: int, tmp: str, path: Path, mode: str, encoding: str | None, old_mode: int | None) -> Iterator[IO]:
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if old_mode is not None:
            os.chmod(tmp, old_mode)
        else:  # a new file gets the usual mode (mkstemp's 0600 honours no umask)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

