"""report.md: the study's metrics table, the failure taxonomy, and a few worked failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..records import atomic_write


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}%" if n else "–"


def write_report(path: Path, metrics: dict[str, Any], rows: list[dict[str, Any]], worked: int = 3) -> None:
    n, cfg = metrics["n"], metrics.get("config", {})
    lo, hi = metrics["ci95"]
    lines = [
        f"# {metrics.get('dataset') or 'GSM-8K ' + cfg.get('split', '')}: {cfg.get('model', '')}",
        "",
        f"{n} problems, {'constrained' if cfg.get('constrain') else 'unconstrained'} greedy decoding, "
        f"{cfg.get('shots', 0)}-shot, seed {cfg.get('seed')}, {cfg.get('dtype', 'float32')} weights, prompt "
        f"{cfg.get('prompt_version') or 'default'}; wall time {metrics.get('wall_seconds', 0):.0f} s.",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| accuracy | {metrics['correct']}/{n} = {_pct(metrics['correct'], n)} "
        f"(95% CI {100 * lo:.1f}–{100 * hi:.1f}%) |",
        f"| parsed | {_pct(metrics['parsed'], n)} |",
        f"| valid trace (checks and runs) | {_pct(metrics['valid'], n)} |",
        f"| wrong answer (valid trace) | {_pct(metrics['wrong_answer'], n)} |",
        f"| invalid trace | {_pct(metrics['invalid_trace'], n)} |",
        f"| wrong expert | {_pct(metrics['wrong_expert'], n)} |",
        f"| generation | {metrics['generated_tokens']} tokens in {metrics['generation_seconds']:.0f} s |",
        "",
        "## By expert (of the gold trace)",
        "",
        "| expert | n | correct | accuracy |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in metrics["by_expert"].items():
        lines.append(f"| {name} | {row['n']} | {row['correct']} | {_pct(row['correct'], row['n'])} |")
    lines += ["", "## Failure taxonomy", "", "| kind | count |", "| --- | --- |"]
    lines += [f"| {kind} | {count} |" for kind, count in metrics["taxonomy"].items()]
    lines += ["", "## Diagnostics", "", "| code | count |", "| --- | --- |"]
    lines += [f"| {code} | {count} |" for code, count in metrics["failures"].items()]
    failures = [r for r in rows if not r["correct"]][:worked]
    if failures:
        lines += ["", "## Worked failures"]
    for r in failures:
        lines += ["", f"### {r['id']}: {r['failure']}", "", f"> {r['question']}", "",
                  f"Gold {r['gold']}, predicted {r['answer']}; diagnostics: {', '.join(r['codes']) or 'none'}.",
                  "", "```yaml", r["trace"].rstrip("\n"), "```"]
    with atomic_write(path) as fh:
        fh.write("\n".join(lines) + "\n")
