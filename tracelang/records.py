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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .diagnostics import Diagnostic
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
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115 - closed below, generator
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None
    with fh:
        try:
            for n, value in parse_lines(fh):
                if isinstance(value, LineError):
                    raise InputError(f"{path}:{n}:{value.column}: {value.message}")
                if not isinstance(value, dict):
                    raise InputError(f"{path}:{n}:1: not a JSON object")
                yield n, value
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None


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


def _read(source: str) -> str:
    try:
        if source == "-":
            return sys.stdin.read()
        return Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{source}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise InputError(f"{source}: {err.strerror or err}") from None


def is_corpus(source: str, text: str | None = None) -> bool:
    if source.endswith(".jsonl"):
        return True
    return source == "-" and text is not None and text.lstrip().startswith("{")


def iter_items(source: str) -> Iterator[Item]:
    text = _read(source)
    if not is_corpus(source, text):
        yield Item(source, 0, text)
        return
    index = 0
    # JSON Lines break at "\n" only: str.splitlines would also split inside a string at U+2028
    for n, record in parse_lines(text.split("\n")):
        item = Item(source, index, "", file_line=n)
        index += 1
        if isinstance(record, LineError):
            item.error = Diagnostic("E002", record.message, n, record.column)
            yield item
            continue
        if not isinstance(record, dict) or not isinstance(record.get("trace"), str):
            item.error = Diagnostic("E002", "the record has no `trace` string", n, 1)
            yield item
            continue
        item.text, item.record = record["trace"], record
        item.question = record.get("question") if isinstance(record.get("question"), str) else None
        item.answer = record.get("answer")
        yield item


def same_file(a: str | Path | None, b: str | Path | None) -> bool:
    """Whether two paths name one file (the same path, a link to it, or the same inode)."""
    if a is None or b is None or str(a) == "-" or str(b) == "-":
        return False
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
        return pa.resolve() == pb.resolve()
    except OSError:
        return False


def refuse_same_files(**paths: str | Path | None) -> str | None:
    """A usage error message if two of the named paths are one file, else None (``--x`` names)."""
    named = [(k, v) for k, v in paths.items() if v is not None]
    for i, (ka, va) in enumerate(named):
        for kb, vb in named[i + 1:]:
            if same_file(va, vb):
                return f"--{ka.replace('_', '-')} and --{kb.replace('_', '-')} name the same file ({vb})"
    return None


# Part files being written, removed if SIGTERM or SIGHUP ends the process first: those signals kill
# without unwinding, so no `finally` would run and a hidden `.NAME.*.part` (up to the whole output)
# would stay behind.
_PARTS: set[str] = set()
_CLEANUP_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)
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
    """While the block runs, SIGTERM or SIGHUP removes the file ``part`` before the process dies."""
    _track_part(str(part))
    try:
        yield
    finally:
        _untrack_part(str(part))


@contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and move it into place only on success.

    A symlink is written through (its target is replaced, the link stays); an existing file keeps
    its permission bits; something that is not a regular file (a device node, a FIFO) is written
    in place, never replaced; a directory is an ``IsADirectoryError`` naming the path."""
    path = Path(os.path.realpath(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    encoding = None if "b" in mode else "utf-8"
    if path.exists() and not path.is_file():  # a device node or a FIFO: never replace it
        with open(path, mode, encoding=encoding) as fh:
            yield fh
        return
    old_mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    with removed_on_signal(tmp):
        yield from _write_part(fd, tmp, path, mode, encoding, old_mode)


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

