"""report.html: one static page, rendered in a real browser (headless Chromium from the
distribution's packages), whose filters work. Skipped only where no Chromium binary exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tracelang.evaluation.backends import Generated
from tracelang.evaluation.runner import EvalConfig, run

# Made up here, in GSM-8K's shape (annotated solution, `#### n`), so the importer makes gold traces.
PROBLEMS = [
    {"id": "toy-mul", "question": "Sara buys 4 notebooks that cost $3 each. How much does she spend?",
     "answer": "She spends 4*3=<<4*3=12>>12 dollars.\n#### 12"},
    {"id": "toy-add", "question": "Tom has 7 apples and buys 5 more. How many apples does he have?",
     "answer": "He has 7+5=<<7+5=12>>12 apples.\n#### 12"},
    {"id": "toy-broken", "question": "A box holds 6 eggs. How many eggs are in 3 boxes?",
     "answer": "There are 6*3=<<6*3=18>>18 eggs.\n#### 18"},
]
TRACES = {
    PROBLEMS[0]["question"]: "expert: arithmetic\ntrace:\n- {op: init, var: notebooks, value: 4}\n"
                             "- {op: init, var: price, value: 3}\n"
                             "- {op: compute, compute_op: mul, args: [notebooks, price], var: cost}\n"
                             "- {op: query, var: cost}\n",
    PROBLEMS[1]["question"]: "expert: arithmetic\ntrace:\n- {op: init, var: apples, value: 7}\n"
                             "- {op: init, var: more, value: 5}\n"
                             "- {op: compute, compute_op: mul, args: [apples, more], var: total}\n"
                             "- {op: query, var: total}\n",
    PROBLEMS[2]["question"]: "expert: arithmetic\ntrace:\n- {op: init, var: eggs, value: 6}\n"
                             "- {op: query, var: boxes}\n",
}


class Replay:
    """Answers each question with its trace above: the runner and the page are under test here."""

    def generate(self, prompts: list[str], questions: list[str]) -> list[Generated]:
        return [Generated(TRACES[q], 20, 0.01) for q in questions]


@pytest.fixture
def report(tmp_path: Path) -> Path:
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    out = tmp_path / "eval"
    run(EvalConfig(model="replay", data_dir=str(data), batch_size=2), out, Replay(), prompt=lambda q: q)
    return out / "report.html"


class _Sections(HTMLParser):
    """The problems' sections (id, data-failure, hidden) and the shown count, from a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, str | None]] = {}
        self.links: list[tuple[str, str]] = []  # (mark id, href) of highlighted quantities
        self._mark: str | None = None
        self._shown = False
        self.shown = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and "problem" in (a.get("class") or ""):
            self.sections[a["id"] or ""] = a
        if tag == "mark":
            self._mark = a.get("id")
        if tag == "a" and self._mark:
            self.links.append((self._mark, a.get("href") or ""))
        self._shown = tag == "b" and a.get("id") == "shown"

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self._mark = None
        if tag == "b":
            self._shown = False

    def handle_data(self, data: str) -> None:
        if self._shown:
            self.shown += data


def test_the_page_is_one_static_file(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    # nothing fetched: no external script, style, image or font (the SVG namespace is a name, not a fetch)
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", page) and "<link" not in page
    assert "@import" not in page and "url(" not in page
    parsed = _Sections()
    parsed.feed(page)
    assert set(parsed.sections) == {"p-toy-mul", "p-toy-add", "p-toy-broken"}
    assert {s["data-failure"] for s in parsed.sections.values()} == {"correct", "wrong_operation", "invalid:E201"}
    # quantities linked to the init that took them: "4" -> step 0 and "$3" -> step 1 of toy-mul
    assert ("p-toy-mul-q0", "#p-toy-mul-s0") in parsed.links and ("p-toy-mul-q1", "#p-toy-mul-s1") in parsed.links
    assert 'id="p-toy-mul-s2"' in page and ">12</td>" in page  # the compute step with its exact value
    assert page.count("gold trace (the importer's") == 3 and "compute mul" in page


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _browser(*args: str) -> subprocess.CompletedProcess:
    binary = _chromium()
    assert binary is not None
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-extensions", *args], capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(_chromium() is None, reason="no Chromium binary (apt-get install chromium)")
def test_the_page_renders_in_chromium_and_its_filters_work(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = _browser(f"--screenshot={shot}", "--window-size=1280,1800", report.as_uri())
    assert done.returncode == 0 and shot.stat().st_size > 20_000, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def visible(fragment: str) -> tuple[set[str], str]:
        dom = _browser("--dump-dom", report.as_uri() + fragment)
        assert dom.returncode == 0, dom.stderr[-2000:]
        parsed = _Sections()
        parsed.feed(dom.stdout)
        assert len(parsed.sections) == 3
        return {i for i, a in parsed.sections.items() if "hidden" not in a}, parsed.shown

    assert visible("") == ({"p-toy-mul", "p-toy-add", "p-toy-broken"}, "3")
    assert visible("#failure=correct") == ({"p-toy-mul"}, "1")
    assert visible("#failure=incorrect") == ({"p-toy-add", "p-toy-broken"}, "2")
    assert visible("#failure=wrong_operation") == ({"p-toy-add"}, "1")
    assert visible("#failure=incorrect&expert=arithmetic") == ({"p-toy-add", "p-toy-broken"}, "2")
    assert visible("#expert=no_such_expert") == ({"p-toy-mul", "p-toy-add", "p-toy-broken"}, "3")  # unknown: ignored
