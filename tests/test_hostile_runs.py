"""Issue 14, the long-running commands: a trace the decoder closed at the token budget is never an
answer; an interrupted writer leaves no part file; a resumed evaluation trusts no stored verdict
and no damaged file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracelang.cli import app
from tracelang.evaluation.backends import Generated
from tracelang.evaluation.runner import BUDGET_CLOSED, EvalConfig, EvalError, run

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Tom has 3 apples and buys 2. How many now?"
ADD = ("expert: arithmetic\ntrace:\n- {op: init, var: a, value: 3}\n- {op: init, var: b, value: 2}\n"
       "- {op: compute, compute_op: add, args: [a, b], var: result}\n- {op: query, var: result}\n")


# ---------------------------------------------------------------- budget-closed traces


def test_solve_does_not_answer_with_a_trace_the_decoder_closed(runner):
    """--max-new-tokens 40 is below the closing margin: the decoder writes the whole trace."""
    result = runner.invoke(app, ["solve", QUESTION, "--model", "tiny", "--max-new-tokens", "40"])
    assert result.exit_code == 1, result.output
    assert "answer: none" in result.stdout
    assert "closed the trace, so it is not an answer" in result.stderr
    assert "Traceback" not in result.output


class Closing:
    """A backend whose every trace is valid and correct but closed at the budget."""

    def generate(self, prompts: list[str], questions: list[str]) -> list[Generated]:
        return [Generated(ADD, 40, 0.01, budget_closed=True) for _ in questions]


def _problems_file(tmp_path: Path) -> Path:
    data = tmp_path / "qa.jsonl"
    data.write_text(json.dumps({"question": QUESTION, "answer": "5"}) + "\n")
    return data


def test_eval_counts_a_budget_closed_trace_as_invalid_with_its_own_class(tmp_path):
    config = EvalConfig(model="closing", data_dir=str(_problems_file(tmp_path)))
    metrics = run(config, tmp_path / "run", Closing(), prompt=lambda q: q, echo=lambda s: None)
    assert (metrics["correct"], metrics["valid"], metrics["invalid_trace"], metrics["budget_closed"]) == (0, 0, 1, 1)
    assert metrics["taxonomy"] == {BUDGET_CLOSED: 1}
    [row] = [json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert row["budget_closed"] and row["answer"] is None and not row["correct"]


def test_maj_at_k_gives_a_budget_closed_sample_no_vote():
    from tracelang.evaluation.voting import VotingBackend

    [chosen] = VotingBackend(Closing(), 3).generate(["p"], [QUESTION])
    assert chosen.budget_closed


# ---------------------------------------------------------------- resuming an evaluation


class Replay:
    def __init__(self, text: str):
        self.text, self.calls = text, 0

    def generate(self, prompts: list[str], questions: list[str]) -> list[Generated]:
        self.calls += 1
        return [Generated(self.text, 10, 0.01) for _ in questions]


def test_a_resumed_evaluation_checks_the_stored_trace_again_not_the_rows_verdict(tmp_path):
    config = EvalConfig(model="replay", data_dir=str(_problems_file(tmp_path)))
    wrong = ADD.replace("value: 2}", "value: 4}")
    out = tmp_path / "run"
    assert run(config, out, Replay(wrong), prompt=lambda q: q, echo=lambda s: None)["correct"] == 0
    preds = out / "predictions.jsonl"
    row = json.loads(preds.read_text())
    row.update(correct=True, valid=True, answer="5", failure=None)  # an edited verdict
    preds.write_text(json.dumps(row) + "\n")
    backend = Replay(ADD)
    again = run(config, out, backend, prompt=lambda q: q, echo=lambda s: None)
    assert backend.calls == 0 and again["correct"] == 0
    assert json.loads(preds.read_text())["answer"] == "7"  # 3 + 4, run again


@pytest.mark.parametrize("line", ["[1, 2]", '{"id": 7}', '{"trace": "x"}', '{"id": "gsm8k-other", "trace": ""}',
                                  "[" * 5000, '{"id": "x", "trace": "' + "9" * 10])
def test_a_resumed_evaluation_redoes_a_row_that_is_not_a_prediction(tmp_path, line):
    config = EvalConfig(model="replay", data_dir=str(_problems_file(tmp_path)))
    out = tmp_path / "run"
    run(config, out, Replay(ADD), prompt=lambda q: q, echo=lambda s: None)
    (out / "predictions.jsonl").write_text(line + "\n")
    said: list[str] = []
    backend = Replay(ADD)
    metrics = run(config, out, backend, prompt=lambda q: q, echo=said.append)
    assert backend.calls == 1 and metrics["correct"] == 1
    assert said and "1 line(s) not a prediction of this run" in said[0]


@pytest.mark.parametrize("content", ["{not json", "[1]", "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),
                                     "[" * 3000])
def test_a_damaged_config_json_is_an_error_naming_it(tmp_path, content):
    config = EvalConfig(model="replay", data_dir=str(_problems_file(tmp_path)))
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(content, encoding="latin-1")
    with pytest.raises(EvalError, match="config.json: not a run's settings"):
        run(config, out, Replay(ADD), prompt=lambda q: q, echo=lambda s: None)


def test_eval_cli_with_a_damaged_config_json_is_one_line_exit_2(runner, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{not json")
    result = runner.invoke(app, ["eval", "--model", "tiny", "--data", str(_problems_file(tmp_path)), "--out", str(out),
                                 "--shots", "0", "--max-new-tokens", "40"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "config.json: not a run's settings" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_eval_cli_with_out_naming_a_file_is_one_line_exit_2(runner, tmp_path):
    out = tmp_path / "file"
    out.write_text("keep")
    result = runner.invoke(app, ["eval", "--model", "tiny", "--data", str(_problems_file(tmp_path)), "--out", str(out)])
    assert result.exit_code == 2 and "not a directory" in result.output, result.output
    assert out.read_text() == "keep"


# ---------------------------------------------------------------- signals during a write


_WRITER = """
import sys, time
from tracelang.fileio import atomic_write
with atomic_write(sys.argv[1]) as fh:
    fh.write("x" * 100000)
    print("ready", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2])
def test_a_signal_during_an_atomic_write_leaves_no_part_file(tmp_path, signum):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    # the signal's default action in the writer, whatever this run inherited (under `nohup` SIGHUP
    # is ignored, and a writer that ignores it rightly lives on)
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=lambda: signal.signal(signum, signal.SIG_DFL))
    try:
        assert proc.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
        assert any(p.name.endswith(".part") for p in tmp_path.iterdir())
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == -signum  # it still dies of the signal
    finally:
        proc.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    assert target.read_text() == "old\n"


def test_sigterm_during_corpus_generate_leaves_no_part_file(tmp_path):
    out = tmp_path / "corpus.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "tracelang", "corpus", "generate", "--n", "5000000", "--out",
                             str(out), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.endswith(".part") for p in tmp_path.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, "corpus generate never started writing"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM
    finally:
        proc.kill()
    assert list(tmp_path.iterdir()) == []


def test_the_cleanup_handler_is_removed_after_the_write(tmp_path):
    from tracelang.fileio import atomic_write

    before = signal.getsignal(signal.SIGTERM)
    with atomic_write(tmp_path / "a.txt") as fh:
        fh.write("a")
        assert signal.getsignal(signal.SIGTERM) is not before or before != signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) == before


# ---------------------------------------------------------------- damaged training checkpoints


def _sft_cfg(out: Path, steps: int):
    from tracelang.training.config import DataSource, SFTConfig

    cfg = SFTConfig(model="tiny", output_dir=str(out), data=[DataSource(path=str(ROOT / "corpora" / "shots.jsonl"))],
                    unfreeze_layers=1, learning_rate=1e-2, max_steps=steps, per_device_train_batch_size=2,
                    save_steps=1, save_total_limit=3, progress=False, tensorboard=False)
    cfg.validate()
    return cfg


def _damage(checkpoint: Path, name: str) -> None:
    file = checkpoint / name
    if name.endswith(".safetensors"):
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])  # truncated
    else:
        file.write_bytes(b"garbage, not a torch file\n")


def test_resume_falls_back_past_damaged_checkpoints_and_says_so(tmp_path):
    from tracelang.training.sft import SFTTrainer

    SFTTrainer(_sft_cfg(tmp_path, 3), echo=lambda s: None).train()
    steps = tmp_path / "sft" / "checkpoints"
    _damage(steps / "step-3", "trained.safetensors")
    _damage(steps / "step-2", "state.pt")
    said: list[str] = []
    SFTTrainer(_sft_cfg(tmp_path, 4), echo=said.append).train()
    falls = [s for s in said if s.startswith("cannot resume from")]
    assert len(falls) == 2 and "step-3" in falls[0] and "step-2" in falls[1], said
    assert "falling back to the checkpoint before it" in falls[0]
    assert any(s == f"resumed from {steps / 'step-1'} at step 1" for s in said), said


def test_resume_with_every_checkpoint_damaged_is_an_error_not_a_silent_restart(tmp_path):
    from types import SimpleNamespace

    from tracelang.models.trained import CheckpointError
    from tracelang.training.stage import Stage

    for step in (1, 2):
        d = tmp_path / "checkpoints" / f"step-{step}"
        d.mkdir(parents=True)
        (d / "trained.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
        (d / "state.pt").write_bytes(b"\x80\x04garbage")
    said: list[str] = []
    stage = SimpleNamespace(run_dir=tmp_path, accelerator=SimpleNamespace(process_index=0), echo=said.append)
    with pytest.raises(CheckpointError, match="no checkpoint reads whole; start afresh with --no-resume"):
        Stage.readable_checkpoint(stage)  # type: ignore[arg-type]
    assert len(said) == 2
    assert Stage.readable_checkpoint(SimpleNamespace(run_dir=tmp_path / "none", echo=said.append,
                                                     accelerator=SimpleNamespace(process_index=0))) is None
