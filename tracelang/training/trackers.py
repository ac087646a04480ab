"""Experiment trackers through accelerate: ``report_to: [tensorboard, wandb, ...]`` in a recipe
becomes ``Accelerator(log_with=...)``, and every logged metric goes to them as well as to
``metrics.jsonl`` (which is always written; the summary and charts read it)."""

from __future__ import annotations

from typing import Any

# pip names where they differ from accelerate's tracker names
_PACKAGES = {"comet_ml": "comet-ml"}


def check(names: list[str], optional: tuple[str, ...] = ()) -> list[str]:
    """The tracker names, each known to accelerate and installed, then those of ``optional`` that are
    installed; else a ValueError in one line."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    available = _available()
    names = [*names, *(name for name in optional if name in available)]
    for name in names:
        if name not in LOGGER_TYPE_TO_CLASS:
            raise ValueError(f"report_to: unknown tracker {name!r} (accelerate has {', '.join(LOGGER_TYPE_TO_CLASS)})")
        if name not in available:
            raise ValueError(f"report_to: {name} is not installed (pip install {_PACKAGES.get(name, name)})")
    return list(dict.fromkeys(names))


def _available() -> set[str]:
    """The trackers accelerate finds installed, by name."""
    from accelerate.tracking import get_available_trackers

    return {getattr(t, "value", str(t)) for t in get_available_trackers()}


def hparams(config: dict[str, Any]) -> dict[str, Any]:
    """A config flattened to scalars (tensorboard's hparams take nothing else)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in hparams(value).items()})
        elif isinstance(value, (bool, int, float, str)):
            out[key] = value
        else:
            out[key] = str(value)
    return out


def scalars(kind: str, row: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics row, named ``kind/key`` (train/loss, eval/accuracy)."""
    return {f"{kind}/{k}": v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
