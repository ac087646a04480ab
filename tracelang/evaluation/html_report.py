"""report.html: the evaluation as one static page to look at failures in (no server, no network: the
styles, the script and the charts are inside the file, the charts as SVG).

The summary and two charts (accuracy by expert with Wilson intervals; the failure taxonomy), then
every problem, filterable by failure class and by expert (of the gold trace). Each problem shows its
question with the quantities it states highlighted, each linked to the `init` step that took its
value; the predicted trace, step by step with each step's exact value; the gold trace the importer
made from the problem's annotated solution, valued the same way; the diagnostics.

The filters also read the page's fragment (``report.html#failure=wrong_operation&expert=arithmetic``),
so a filtered view can be linked to (and tested in a headless browser).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

from ..data.gsm8k import Problem
from ..data.importer import convert
from ..diagnostics import render as render_diagnostic
from ..fileio import atomic_write
from ..grounding import Quantity, extract, grounder_for
from ..ir import InitStep, Step
from ..numbers import render
from ..pipeline import Report, analyze
from .metrics import wilson

CORRECT = "correct"  # the failure filter's value for a correct prediction

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#1b1b1b}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
.charts{display:flex;gap:2em;flex-wrap:wrap}.filters{position:sticky;top:0;background:#fff;padding:.5em 0;
border-bottom:1px solid #ccc;z-index:1}.filters label{margin-right:1.5em}
section.problem{border:1px solid #ddd;border-radius:6px;margin:1em 0;padding:.6em 1em}
section.problem.ok{border-left:6px solid #2a9d3a}section.problem.bad{border-left:6px solid #c0392b}
.cols{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1em}.question{font-size:1.02em}
mark.q{background:#fde68a;padding:0 2px;border-radius:3px}mark.q.untaken{background:#e5e7eb}
mark.q a{color:inherit;text-decoration:none}tr.step:target,mark.q:target{outline:2px solid #2563eb}
table.steps td.v{font-family:ui-monospace,monospace;text-align:right}table.steps td.op{font-family:ui-monospace,
monospace}pre{background:#f6f8fa;padding:.5em;overflow-x:auto;margin:.3em 0}.diag{color:#b91c1c}
.meta{color:#555}.tag{display:inline-block;background:#eef;border-radius:3px;padding:0 6px;margin-right:6px}
"""

SCRIPT = """
function applyFilters(){
  var f=document.getElementById('filter-failure').value, e=document.getElementById('filter-expert').value, n=0;
  document.querySelectorAll('section.problem').forEach(function(s){
    var show=(f==='all'||s.dataset.failure===f||(f==='incorrect'&&s.dataset.failure!=='correct'))&&
             (e==='all'||s.dataset.expert===e);
    s.hidden=!show; if(show){n++;}
  });
  document.getElementById('shown').textContent=n;
}
function fromHash(){
  var h=new URLSearchParams(location.hash.slice(1));
  ['failure','expert'].forEach(function(k){
    var v=h.get(k), sel=document.getElementById('filter-'+k);
    if(v!==null&&Array.prototype.some.call(sel.options,function(o){return o.value===v;})){sel.value=v;}
  });
  applyFilters();
}
document.getElementById('filter-failure').addEventListener('change',applyFilters);
document.getElementById('filter-expert').addEventListener('change',applyFilters);
window.addEventListener('hashchange',fromHash);
fromHash();
"""


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}%" if n else "–"


def _bar_chart(title: str, bars: list[tuple[str, float, tuple[float, float] | None]], unit: str,
               maximum: float) -> str:
    """A horizontal SVG bar chart; a bar's optional interval is drawn as a whisker."""
    left = max(150, 8 * max((len(label) for label, _, _ in bars), default=0) + 12)  # room for the longest label
    width, row = left + 310, 26
    height = 34 + row * len(bars)
    scale = (width - left - 50) / maximum if maximum > 0 else 0.0
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg"><text x="4" y="16" font-weight="bold">{escape(title)}</text>']
    for i, (label, value, interval) in enumerate(bars):
        y = 28 + i * row
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{value * scale:.1f}" height="{row - 8}" fill="#4f7cc4"/>')
        if interval is not None:
            lo, hi = interval
            parts.append(f'<line x1="{left + lo * scale:.1f}" x2="{left + hi * scale:.1f}" y1="{y + row / 2 - 2}" '
                         f'y2="{y + row / 2 - 2}" stroke="#111" stroke-width="1.5"/>')
        end = max(value, interval[1]) if interval is not None else value  # the label clears the whisker
        parts.append(f'<text x="{left + end * scale + 4:.1f}" y="{y + 14}" font-size="12">{value:g}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _charts(metrics: dict[str, Any]) -> str:
    experts = [(name, 100 * r["correct"] / r["n"] if r["n"] else 0.0,
                tuple(100 * x for x in wilson(r["correct"], r["n"])))
               for name, r in metrics["by_expert"].items()]
    taxonomy = [(kind, float(count), None) for kind, count in metrics["taxonomy"].items()]
    out = []
    if experts:
        out.append(_bar_chart("accuracy by expert (%, Wilson 95%)", [(f"{n} (n={metrics['by_expert'][n]['n']})",
                                                                      round(v, 1), iv) for n, v, iv in experts],
                              "%", 100.0))
    if taxonomy:
        out.append(_bar_chart("failure taxonomy (problems)", taxonomy, "", max(v for _, v, _ in taxonomy)))
    return f'<div class="charts">{"".join(out)}</div>'


def _summary(metrics: dict[str, Any]) -> str:
    n, cfg = metrics["n"], metrics.get("config", {})
    lo, hi = metrics["ci95"]
    rows = [
        ("accuracy", f"{metrics['correct']}/{n} = {_pct(metrics['correct'], n)} "
                     f"(95% CI {100 * lo:.1f}–{100 * hi:.1f}%)"),
        ("parsed", _pct(metrics["parsed"], n)),
        ("valid trace (checks and runs)", _pct(metrics["valid"], n)),
        ("wrong answer (valid trace)", _pct(metrics["wrong_answer"], n)),
        ("invalid trace", _pct(metrics["invalid_trace"], n)),
        ("closed by the decoder at the token budget", _pct(metrics.get("budget_closed", 0), n)),
        ("wrong expert", _pct(metrics["wrong_expert"], n)),
    ]
    meta = (f"{n} problems, {'constrained' if cfg.get('constrain') else 'unconstrained'} decoding, "
            f"{cfg.get('shots', 0)}-shot, seed {cfg.get('seed')}, {cfg.get('dtype', 'float32')} weights, prompt "
            f"{cfg.get('prompt_version') or 'default'}")
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<p class="meta">{escape(meta)}</p><table id="summary">{body}</table>'


def _step_name(step: Step) -> str:
    name = getattr(step, "var", None) or getattr(step, "entity", None) or getattr(step, "to_entity", None)
    return name.name if name is not None else ""


def _takers(report: Report, quantities: list[Quantity]) -> dict[int, int]:
    """Quantity index -> the index of the init step (in execution order) that took its value: each
    init takes the first quantity, in the question's order, that states its value and is not taken."""
    taken: dict[int, int] = {}
    if report.program is None:
        return taken
    steps = [s for b in report.program.blocks for s in b.trace]
    for j, step in enumerate(steps):
        if isinstance(step, InitStep) and step.value is not None:
            for k, q in enumerate(quantities):
                if k not in taken and step.value.value in q.values:
                    taken[k] = j
                    break
    return taken


def _question_html(pid: str, question: str, quantities: list[Quantity], taken: dict[int, int]) -> str:
    out, at = [], 0
    for k, q in enumerate(quantities):
        if q.start < at:  # overlapping spans: the first one wins
            continue
        out.append(escape(question[at:q.start]))
        text = escape(question[q.start:q.end])
        title = escape(f"{q.kind}: {render(q.value)}")
        if k in taken:
            out.append(f'<mark class="q taken" id="{pid}-q{k}" title="{title}">'
                       f'<a href="#{pid}-s{taken[k]}">{text}</a></mark>')
        else:
            out.append(f'<mark class="q untaken" id="{pid}-q{k}" title="{title} (no init took it)">{text}</mark>')
        at = q.end
    out.append(escape(question[at:]))
    return "".join(out)


def _steps_html(pid: str | None, report: Report, taken: dict[int, int]) -> str:
    """The trace step by step with each executed step's exact value (a step the run did not reach
    has none)."""
    if report.program is None:
        return ""
    values = [v for _, _, v in report.execution.steps] if report.execution is not None else []
    back = {j: k for k, j in taken.items()}
    rows = []
    steps = [s for b in report.program.blocks for s in b.trace]
    for j, step in enumerate(steps):
        value = render(values[j]) if j < len(values) and values[j] is not None else ""
        op = step.op if step.op != "compute" else f"compute {getattr(step, 'compute_op', '')}"
        anchor = f' id="{pid}-s{j}"' if pid else ""
        link = f' <a href="#{pid}-q{back[j]}" title="the quantity it took">↖</a>' if pid and j in back else ""
        line = step.span.line if step.span else ""
        rows.append(f'<tr class="step"{anchor}><td>{line}</td><td class="op">{escape(op)}</td>'
                    f'<td>{escape(_step_name(step))}{link}</td><td class="v">{escape(value)}</td></tr>')
    return ('<table class="steps"><tr><th>line</th><th>op</th><th>name</th><th>exact value</th></tr>'
            + "".join(rows) + "</table>")


def _problem_html(row: dict[str, Any], problem: Problem | None) -> str:
    pid = escape("p-" + str(row["id"]))
    question = row["question"]
    quantities = extract(question)
    report = analyze(row["trace"], expected=problem.gold if problem else None, grounder=grounder_for(question))
    taken = _takers(report, quantities)
    failure = CORRECT if row["correct"] else (row.get("failure") or "other")
    expert = row.get("gold_expert") or "unknown"
    diags = "".join(f'<pre class="diag">{escape(render_diagnostic(d, row["trace"], "trace"))}</pre>'
                    for d in report.diagnostics) or '<p class="meta">no diagnostics</p>'
    gold_html = '<p class="meta">the importer made no gold trace for this problem</p>'
    record = convert(problem).record if problem is not None else None
    if record is not None:
        gold = analyze(record["trace"], grounder=grounder_for(question))
        gold_html = (f'<p class="meta">expert {escape(str(record.get("expert")))}</p>'
                     + _steps_html(None, gold, {}) + f"<pre>{escape(record['trace'])}</pre>")
    tags = (f'<span class="tag">{escape(failure)}</span><span class="tag">gold expert {escape(expert)}</span>'
            f'<span class="tag">predicted expert {escape(str(row.get("expert")))}</span>')
    return (f'<section class="problem {"ok" if row["correct"] else "bad"}" id="{pid}" '
            f'data-failure="{escape(failure)}" data-expert="{escape(expert)}">'
            f'<h3>{escape(str(row["id"]))}: gold {escape(str(row["gold"]))}, predicted {escape(str(row["answer"]))}'
            f"</h3><p>{tags}</p>"
            f'<p class="question">{_question_html(pid, question, quantities, taken)}</p>'
            f'<div class="cols"><div><h4>trace</h4>{_steps_html(pid, report, taken)}'
            f'<pre>{escape(row["trace"])}</pre><h4>diagnostics</h4>{diags}</div>'
            f"<div><h4>gold trace (the importer's, from the annotated solution)</h4>{gold_html}</div></div>"
            "</section>")


def _options(select: str, values: Iterable[tuple[str, str]]) -> str:
    opts = "".join(f'<option value="{escape(v)}">{escape(label)}</option>' for v, label in values)
    return f'<select id="filter-{select}">{opts}</select>'


def write_html(path: Path, metrics: dict[str, Any], rows: list[dict[str, Any]],
               problems: list[Problem] | None = None) -> None:
    """The page, written atomically. ``problems`` (by id) give the gold traces."""
    by_id = {p.id: p for p in problems or []}
    failures = sorted({r.get("failure") or "other" for r in rows if not r["correct"]})
    experts = sorted({r.get("gold_expert") or "unknown" for r in rows})
    n_fail = {f: sum(1 for r in rows if not r["correct"] and (r.get("failure") or "other") == f) for f in failures}
    filters = (
        '<div class="filters"><label>failure class '
        + _options("failure", [("all", "all"), (CORRECT, f"correct ({metrics['correct']})"),
                               ("incorrect", f"any failure ({len(rows) - metrics['correct']})")]
                   + [(f, f"{f} ({n_fail[f]})") for f in failures])
        + "</label><label>expert (gold) "
        + _options("expert", [("all", "all")] + [(e, e) for e in experts])
        + f'</label><span><b id="shown">{len(rows)}</b> of {len(rows)} problems shown</span></div>')
    title = f"{metrics.get('dataset') or 'evaluation'}: {metrics.get('config', {}).get('model', '')}"
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{escape(title)}</h1>{_summary(metrics)}<h2>Charts</h2>{_charts(metrics)}"
            f"<h2>Problems</h2>{filters}"
            + "".join(_problem_html(r, by_id.get(r["id"])) for r in rows)
            + f"<script>{SCRIPT}</script></body></html>\n")
    with atomic_write(path) as fh:
        fh.write(page)
