"""SFT on the tiny model: the loss falls, frozen parameters do not move, resume is exact, the
data guards hold, checkpoints hold only what trained and export to a loadable model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tracelang.data.splits import dev_ids
from tracelang.models import load_model, trained
from tracelang.models.prompt import PROMPT_VERSION
from tracelang.paths import SHOTS
from tracelang.training import checkpoint as ckpt
from tracelang.training.batching import make_batch
from tracelang.training.config import DataSource, SFTConfig
from tracelang.training.data import DataTally, TrainingDataError, read_source
from tracelang.training.partial import PartialModel
from tracelang.training.sft import SFTTrainer

ROOT = Path(__file__).resolve().parents[1]


def _cfg(out: Path, steps: int, **kw) -> SFTConfig:
    base = dict(model="tiny", output_dir=str(out), data=[DataSource(path=str(SHOTS))], unfreeze_layers=1,
                learning_rate=1e-2, max_steps=steps, per_device_train_batch_size=2, gradient_accumulation_steps=2,
                save_steps=3, progress=False, warmup_ratio=0.2, tensorboard=False)
    base.update(kw)
    cfg = SFTConfig(**base)
    cfg.validate()
    return cfg


def _quiet(_line: str) -> None:
    pass


class _Stop(Exception):
    pass


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft-full")
    trainer = SFTTrainer(_cfg(out, 12), echo=_quiet)
    trainer.train()
    return out, trainer


def _corpus_loss(pm: PartialModel, trainer: SFTTrainer) -> float:
    examples = trainer.per_source[0]
    batch = make_batch(examples, trainer.setup.loaded.tokenizer.pad_token_id, trainer.setup.table)
    with torch.no_grad():
        return float(-pm(batch, "constrained").mean())


def test_loss_falls(full_run) -> None:
    out, trainer = full_run
    rows = [json.loads(x) for x in (out / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 13))
    before = PartialModel(load_model("tiny").model, 1, "grammar", True, trainer.setup.pm.subset.tolist())
    assert _corpus_loss(trainer.setup.pm, trainer) < 0.7 * _corpus_loss(before, trainer)


def test_frozen_parameters_stay_bit_identical(full_run) -> None:
    _, trainer = full_run
    fresh = load_model("tiny").model.state_dict()
    trained = {n[len("model."):] for n in trainer.setup.pm.trained_parameters() if n.startswith("model.")}
    moved = []
    for name, value in trainer.setup.pm.model.state_dict().items():
        if name in trained:
            moved.append(not torch.equal(value, fresh[name]))
        else:
            assert torch.equal(value, fresh[name]), name
    assert moved and all(moved)  # and the unfrozen ones did train


def test_checkpoint_holds_only_what_trained(full_run) -> None:
    out, trainer = full_run
    final = out / "sft" / "final"
    tensors = trained.read_tensors(final)
    assert set(tensors) == set(trainer.setup.pm.trained_parameters()) | {"head_rows_ids"}
    assert not any("embed_tokens" in n or "layers.0." in n for n in tensors)
    meta = trained.read_meta(final)
    assert meta["prompt_version"] == PROMPT_VERSION and meta["base_model"] == "tiny"
    assert meta["config"]["unfreeze_layers"] == 1 and meta["step"] == 12
    assert (final / "state.pt").is_file() and not list(final.glob("*.bin"))
    assert ckpt.read_state(final)["step"] == 12  # loads with weights_only=True


def test_resume_reproduces_the_uninterrupted_run(full_run, tmp_path: Path) -> None:
    out, _ = full_run
    trainer = SFTTrainer(_cfg(tmp_path, 12), echo=_quiet)
    save = trainer.save

    def stop_after_6(step: int, final: bool = False) -> None:
        save(step, final)
        if step == 6:
            raise _Stop

    trainer.save = stop_after_6  # type: ignore[method-assign]
    with pytest.raises(_Stop):
        trainer.train()
    SFTTrainer(_cfg(tmp_path, 12), echo=_quiet).train()
    a, b = trained.read_tensors(out / "sft" / "final"), trained.read_tensors(tmp_path / "sft" / "final")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(x)["step"] for x in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert rows == list(range(1, 13))  # the log was cut at the checkpoint and continued


def test_no_resume_removes_the_earlier_checkpoints(tmp_path: Path) -> None:
    SFTTrainer(_cfg(tmp_path, 4, save_steps=1), echo=_quiet).train()
    lines: list[str] = []
    SFTTrainer(_cfg(tmp_path, 2, save_steps=1), echo=lines.append).train(resume=False)
    assert any(x.startswith("not resuming: removed the earlier checkpoints/ and final/") for x in lines)
    assert sorted(d.name for d in (tmp_path / "sft" / "checkpoints").iterdir()) == ["step-1", "step-2"]
    assert ckpt.latest(tmp_path / "sft").name == "step-2" and trained.read_meta(tmp_path / "sft" / "final")["step"] == 2


def test_export_loads_as_a_plain_model(full_run, tmp_path: Path) -> None:
    out, trainer = full_run
    exported = ckpt.export(out / "sft" / "final", tmp_path / "model")
    reloaded = load_model(str(exported))
    ids = torch.tensor([trainer.per_source[0][0].input_ids])
    with torch.no_grad(), trainer.setup.pm.serving() as model:
        expected = model(input_ids=ids).logits
        got = reloaded.model(input_ids=ids).logits
    assert torch.allclose(expected, got, atol=1e-5)


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _record(rid: str, **meta) -> dict:
    trace = "expert: arithmetic\ntrace:\n- {op: init, var: a, value: 2}\n- {op: init, var: b, value: 3}\n" \
            "- {op: compute, compute_op: add, args: [a, b], var: total}\n- {op: query, var: total}\n"
    return {"id": rid, "question": "Two and three more: how many?", "trace": trace, "answer": "5",
            "expert": "arithmetic", "source": "test", "meta": meta}


def test_gsm8k_test_records_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.jsonl", [_record("ok-1"), _record("gsm8k-test-00007")])
    with pytest.raises(TrainingDataError, match=r"c.jsonl: record 2 .*evaluation only"):
        read_source(path, DataTally())
    lifted = _write(tmp_path / "d.jsonl", [_record("syn-1", origin="gsm8k-test-00003")])
    with pytest.raises(TrainingDataError, match="gsm8k-test-00003"):
        read_source(lifted, DataTally())


def test_dev_records_are_skipped(tmp_path: Path) -> None:
    dev = sorted(dev_ids())[:2]
    path = _write(tmp_path / "c.jsonl", [_record("ok-1"), _record(dev[0]), _record("syn-2", origin=dev[1])])
    tally = DataTally()
    assert [r["id"] for r in read_source(path, tally)] == ["ok-1"]
    assert tally.counts["skipped (dev split)"] == 2
