"""A stage's summary: its learning curve as a PNG (training loss and gradient norm, dev accuracy
with its Wilson interval, against the optimiser step) and a markdown page that links it.

Read from the stage's ``metrics.jsonl`` only, so it can be redrawn for any run, finished or not
(``tracelang train summary RUN_DIR``); stages that continue each other can be drawn as one curve
(``tracelang train summary STAGE_DIR STAGE_DIR ... --out curve.png``). matplotlib is an optional
dependency (the ``charts`` extra, part of ``dev``): without it the page says so and has no picture.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..evaluation.metrics import wilson
from ..fileio import atomic_write
from .runlog import metric_rows


def read_metrics(stage_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train rows, eval rows) of a stage's log; unreadable lines are skipped, and so is a value that
    is not a number (a hand-edited `"loss": [1, 2]`): what is drawn and averaged is numbers only."""
    train, evals = [], []
    for row in metric_rows(Path(stage_dir) / "metrics.jsonl"):
        kind = row.get("kind")
        row = {k: v for k, v in row.items() if _number(v)}
        if isinstance(row.get("step"), int):  # a row is drawn at its step, a count
            (evals if kind == "eval" else train).append(row)
    return train, evals


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not abs(value) >= 1e300  # NaN stays


def _smooth(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _accuracy_points(evals: list[dict[str, Any]], mode: str, x: str = "step") -> list[tuple[float, ...]]:
    points = []
    for row in evals:
        acc, n = row.get(f"{mode}_accuracy"), row.get(f"{mode}_n")
        if acc is None or not n:
            continue
        lo, hi = wilson(round(acc * n), n)
        points.append((row[x], acc, lo, hi))
    return points


def learning_curve(stage_dir: Path, out: Path | None = None) -> Path | None:
    """Draw one stage's curve; None when matplotlib is missing or there is nothing to draw."""
    train, evals = read_metrics(stage_dir)
    title = f"{Path(stage_dir).resolve().parent.name}/{Path(stage_dir).name}: learning curve"
    return _draw(train, evals, Path(out) if out else Path(stage_dir) / "learning_curve.png", title)


def chain_metrics(stage_dirs: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[int, str]]]:
    """(train rows, eval rows, (first step, run name) of each stage) of stages that continue each
    other (``--init`` from the one before), their steps laid end to end."""
    train: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    starts: list[tuple[int, str]] = []
    offset, hours = 0, 0.0
    for stage_dir in stage_dirs:
        t, e = ([r for r in rows if isinstance(r.get("step"), int)] for rows in read_metrics(stage_dir))
        starts.append((offset, Path(stage_dir).resolve().parent.name))
        at_step: dict[int, float] = {}
        for r in sorted(t, key=lambda r: r["step"]):  # "hours": step time so far, over all the stages
            seconds = r.get("seconds")
            hours += seconds / 3600 if isinstance(seconds, (int, float)) and seconds > 0 else 0.0
            at_step[r["step"]] = hours
            train.append({**r, "step": r["step"] + offset, "hours": hours})
        for r in e:
            before = [h for s, h in at_step.items() if s <= r["step"]]
            evals.append({**r, "step": r["step"] + offset, "hours": max(before, default=hours)})
        offset += max((r["step"] for r in t + e), default=0)
    return train, evals, starts


def chain_curve(stage_dirs: list[Path], out: Path, hours: bool = False) -> Path | None:
    """One curve for a continued run's stages, a dashed line where each later stage starts; with
    ``hours`` against hours of step time (CPU-hours of the machine that trained) instead of steps."""
    train, evals, starts = chain_metrics(stage_dirs)
    names = " \u2192 ".join(name for _, name in starts)
    if hours:
        first = {r["step"]: r["hours"] for r in train}
        starts = [(first.get(step + 1, 0.0), name) for step, name in starts]  # type: ignore[misc]
    return _draw(train, evals, Path(out), f"{names}: learning curve", starts, "hours" if hours else "step")


def _draw(train: list[dict[str, Any]], evals: list[dict[str, Any]], out: Path, title: str,
          starts: list[tuple[int, str]] | None = None, x: str = "step") -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display on training machines
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    train = [r for r in train if r.get("loss") is not None]  # RL logs a loss only on steps that updated
    if not train:
        return None
    steps = [r[x] for r in train]
    loss = [r["loss"] for r in train]
    window = max(1, len(loss) // 40)
    fig, (ax_loss, ax_acc) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    ax_loss.plot(steps, loss, color="0.8", linewidth=0.8, label="loss per step")
    ax_loss.plot(steps, _smooth(loss, window), color="C0", label=f"loss, mean of {window} steps")
    ax_loss.set_ylabel("training loss")
    norms = [(r[x], r["grad_norm"]) for r in train if r.get("grad_norm") is not None]
    if norms:
        ax_norm = ax_loss.twinx()
        ax_norm.plot([s for s, _ in norms], [g for _, g in norms], color="C3", alpha=0.35, linewidth=0.8)
        ax_norm.set_ylabel("gradient norm (before clipping)", color="C3")
    ax_loss.legend(loc="upper right")
    drawn = False
    for mode, colour in (("constrained", "C2"), ("free", "C1")):
        points = _accuracy_points(evals, mode, x)
        if points:
            xs = [p[0] for p in points]
            ys = [100 * p[1] for p in points]
            err = [[100 * (p[1] - p[2]) for p in points], [100 * (p[3] - p[1]) for p in points]]
            ax_acc.errorbar(xs, ys, yerr=err, marker="o", capsize=3, color=colour,
                            label=f"dev accuracy, {mode} (Wilson 95%)")
            drawn = True
    for step, name in (starts or [])[1:]:  # where a continued stage begins (a fresh optimiser and data order)
        for ax in (ax_loss, ax_acc):
            ax.axvline(step, color="0.5", linestyle="--", linewidth=0.8)
        ax_acc.text(step, 1.0, f" {name}", transform=ax_acc.get_xaxis_transform(), va="top", fontsize=8,
                    color="0.35")
    ax_acc.set_ylabel("dev accuracy (%)")
    ax_acc.set_xlabel("optimiser step" if x == "step" else "hours of step time (2 CPU cores)")
    if drawn:
        ax_acc.legend(loc="upper left")
    else:
        ax_acc.text(0.5, 0.5, "no dev evaluation yet", ha="center", va="center", transform=ax_acc.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(out, "wb") as fh:  # replaced, never written through a link planted there
        fig.savefig(fh, dpi=110, format="png")
    plt.close(fig)
    return out


def write_summary(stage_dir: Path) -> Path:
    """``summary.md`` in the stage directory: the loss by epoch, the dev evaluations, the curve."""
    stage_dir = Path(stage_dir)
    train, evals = read_metrics(stage_dir)
    train = [r for r in train if r.get("loss") is not None]
    picture = learning_curve(stage_dir)
    lines = [f"# {stage_dir.resolve().parent.name}/{stage_dir.name}", ""]
    if train:
        seconds = sum(r.get("seconds", 0.0) for r in train)
        lines += [f"{train[-1]['step']} optimiser steps logged, {seconds / 3600:.2f} h of step time.", "",
                  "| epoch | steps | mean loss | mean gradient norm | tokens/s |", "| --- | --- | --- | --- | --- |"]
        by_epoch: dict[int, list[dict[str, Any]]] = {}
        for r in train:
            by_epoch.setdefault(max(0, math.ceil(r.get("epoch", 0.0)) - 1), []).append(r)
        for epoch, rows in sorted(by_epoch.items()):
            norms = [r["grad_norm"] for r in rows if r.get("grad_norm") is not None]
            speed = sum(r.get("tokens", 0) for r in rows) / max(1e-9, sum(r.get("seconds", 0.0) for r in rows))
            lines.append(f"| {epoch + 1} | {len(rows)} | {sum(r['loss'] for r in rows) / len(rows):.4f} | "
                         f"{sum(norms) / len(norms) if norms else float('nan'):.2f} | {speed:.0f} |")
    if evals:
        lines += ["", "Dev evaluations (a seeded sample of the dev split):", "",
                  "| step | mode | n | accuracy | 95% CI (Wilson) | valid |", "| --- | --- | --- | --- | --- | --- |"]
        for row in evals:
            for mode in ("constrained", "free"):
                n = row.get(f"{mode}_n")
                if not n:
                    continue
                acc = row[f"{mode}_accuracy"]
                lo, hi = wilson(round(acc * n), n)
                lines.append(f"| {row['step']} | {mode} | {n} | {100 * acc:.1f}% | {100 * lo:.1f}–{100 * hi:.1f}% | "
                             f"{100 * row.get(f'{mode}_valid', 0.0):.0f}% |")
    lines += ["", f"![learning curve]({picture.name})" if picture else
              "(no learning-curve picture: `pip install 'tracelang[charts]'` for matplotlib)"]
    out = stage_dir / "summary.md"
    with atomic_write(out) as fh:
        fh.write("\n".join(lines) + "\n")
    return out
