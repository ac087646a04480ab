"""`report_to` in a recipe: accelerate's trackers get every logged metric; a tracker that is not
installed (or not known to accelerate) is a one-line config error before anything loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracelang.paths import SHOTS
from tracelang.training.config import ConfigError, SFTConfig, checked
from tracelang.training.sft import SFTTrainer


def _cfg(out: Path, **kw) -> SFTConfig:
    return checked(SFTConfig, {"model": "tiny", "output_dir": str(out), "data": [str(SHOTS)], "unfreeze_layers": 1,
                               "max_steps": 2, "per_device_train_batch_size": 2, "save_steps": 0, "progress": False,
                               **kw})


def test_no_trackers_by_default(tmp_path: Path) -> None:
    assert _cfg(tmp_path).report_to == []


def test_unknown_and_missing_trackers_are_one_line_errors(tmp_path: Path) -> None:
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

    with pytest.raises(ConfigError, match=r"report_to: unknown tracker 'tensorbored' \(accelerate has .*tensorboard"):
        _cfg(tmp_path, report_to=["tensorbored"])
    available = {getattr(t, "value", str(t)) for t in get_available_trackers()}
    missing = [name for name in LOGGER_TYPE_TO_CLASS if name not in available]
    if not missing:
        pytest.skip("every tracker accelerate knows is installed here")
    with pytest.raises(ConfigError, match=rf"report_to: {missing[0]} is not installed \(pip install "):
        _cfg(tmp_path, report_to=[missing[0]])


def test_metrics_reach_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = _cfg(tmp_path, tensorboard=True)  # the older switch
    assert cfg.report_to == ["tensorboard"]
    SFTTrainer(cfg, echo=lambda _line: None).train()
    rows = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    logged = {r["step"]: r["loss"] for r in rows if r["kind"] == "train"}
    loss: dict[int, float] = {}
    for events in {p.parent for p in (tmp_path / "sft" / "trackers").rglob("events.out.tfevents.*")}:
        acc = EventAccumulator(str(events)).Reload()  # the scalars' directory, and the hparams' one
        if "train/loss" in acc.Tags()["scalars"]:
            loss = {e.step: e.value for e in acc.Scalars("train/loss")}
    assert loss.keys() == logged.keys() == {1, 2}
    assert all(loss[s] == pytest.approx(logged[s], rel=1e-6) for s in loss)
