"""report.md: the study's metrics table, the failure taxonomy, and a few worked failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..fileio import atomic_write


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}%" if n else "–"


def _decoding(cfg: dict[str, Any]) -> str:
    k = cfg.get("samples", 1) or 1
    return "greedy" if k == 1 else f"maj@{k} of samples at temperature {cfg.get('temperature')}"


def charts(directory: Path, metrics: dict[str, Any]) -> list[str]:
    """PNG charts beside the report (accuracy by expert with Wilson intervals, the failure
    taxonomy); their file names, none when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    from .metrics import wilson

    names = []
    experts = list(metrics["by_expert"].items())
    if experts:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        accs = [100 * r["correct"] / r["n"] if r["n"] else 0.0 for _, r in experts]
        bounds = [wilson(r["correct"], r["n"]) for _, r in experts]
        err = [[a - 100 * lo for a, (lo, _) in zip(accs, bounds, strict=True)],
               [100 * hi - a for a, (_, hi) in zip(accs, bounds, strict=True)]]
        ax.bar([f"{k}\n(n={r['n']})" for k, r in experts], accs, yerr=err, capsize=4, color="C2")
        ax.set_ylabel("accuracy (%), Wilson 95%")
        ax.set_title("accuracy by expert (of the gold trace)")
        names.append(_save(fig, directory / "accuracy_by_expert.png"))
    taxonomy = list(metrics["taxonomy"].items())
    if taxonomy:
        fig, ax = plt.subplots(figsize=(6, max(2.4, 0.9 + 0.45 * len(taxonomy))))
        ax.barh([k for k, _ in taxonomy][::-1], [v for _, v in taxonomy][::-1], color="C3")
        ax.set_xlabel("problems")
        ax.set_title("failure taxonomy")
        names.append(_save(fig, directory / "failure_taxonomy.png"))
    return names


def _save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_write(path, "wb") as fh:  # replaced, never written through a link planted there
        fig.savefig(fh, dpi=110, format="png")
    plt.close(fig)
    return path.name


def write_report(path: Path, metrics: dict[str, Any], rows: list[dict[str, Any]], worked: int = 3) -> None:
    n, cfg = metrics["n"], metrics.get("config", {})
    lo, hi = metrics["ci95"]
    lines = [
        f"# {metrics.get('dataset') or 'GSM-8K ' + cfg.get('split', '')}: {cfg.get('model', '')}",
        "",
        f"{n} problems, {'constrained' if cfg.get('constrain') else 'unconstrained'} decoding, "
        f"{_decoding(cfg)}, "
        f"{cfg.get('shots', 0)}-shot, seed {cfg.get('seed')}, {cfg.get('dtype', 'float32')} weights, prompt "
        f"{cfg.get('prompt_version') or 'default'}; wall time {metrics.get('wall_seconds', 0):.0f} s.",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| accuracy | {metrics['correct']}/{n} = {_pct(metrics['correct'], n)} "
        f"(95% CI {100 * lo:.1f}–{100 * hi:.1f}%) |",
        *([f"| pass@{cfg.get('samples')} (a right answer among the samples) | {metrics['pass_at_k']}/{n} = "
           f"{_pct(metrics['pass_at_k'], n)} (95% CI {100 * metrics['pass_ci95'][0]:.1f}–"
           f"{100 * metrics['pass_ci95'][1]:.1f}%) |"] if "pass_at_k" in metrics else []),
        f"| parsed | {_pct(metrics['parsed'], n)} |",
        f"| valid trace (checks and runs) | {_pct(metrics['valid'], n)} |",
        f"| wrong answer (valid trace) | {_pct(metrics['wrong_answer'], n)} |",
        f"| invalid trace | {_pct(metrics['invalid_trace'], n)} |",
        f"| of which closed by the decoder at the token budget | {_pct(metrics.get('budget_closed', 0), n)} |",
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
    pictures = charts(path.parent, metrics)
    if pictures:
        lines += ["", "## Charts", ""] + [f"![{name[:-4].replace('_', ' ')}]({name})" for name in pictures]
    failures = [r for r in rows if not r["correct"]][:worked]
    if failures:
        lines += ["", "## Worked failures"]
    for r in failures:
        lines += ["", f"### {r['id']}: {r['failure']}", "", f"> {r['question']}", "",
                  f"Gold {r['gold']}, predicted {r['answer']}; diagnostics: {', '.join(r['codes']) or 'none'}.",
                  "", "```yaml", r["trace"].rstrip("\n"), "```"]
    with atomic_write(path) as fh:
        fh.write("\n".join(lines) + "\n")
