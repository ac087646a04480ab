"""Two processes, kept proven: `accelerate launch` with two CPU processes (gloo; see ``_launch`` for
why not `--cpu --num_processes 2`) runs `train sft` and GRPO on the tiny model, and each ends where
one process ends with the same global batch.

Tolerance: losses, gradient norms and rewards within 1e-5 relative (1e-7 absolute), the trained
weights within 5e-5 absolute (the runs move them by up to learning rate x steps, 0.03 and 0.1; 4e-6
was seen; GRPO runs with AdamW's epsilon at 1e-4, see tests/launch_rl_toy.py). Two processes add the
same numbers in another order (each process's share of the step, then the all-reduce), and AdamW's
m / sqrt(v) magnifies rounding where a gradient is near zero, so bit-equality is not promised;
anything beyond rounding (a wrong normaliser, a question sampled twice, a gradient not averaged) is
far outside it. Checkpoints are written once (by process 0; each process its own optimiser state),
and a two-process run resumed from its checkpoint continues exactly as the uninterrupted run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tracelang.models import trained as ckpt  # checkpoint reading lives in models/ (i23)
from tracelang.paths import SHOTS

ROOT = Path(__file__).resolve().parents[1]
RTOL, ATOL, WEIGHTS_ATOL = 1e-5, 1e-7, 5e-5



@pytest.fixture(autouse=True)
def _fresh_single_process(monkeypatch: pytest.MonkeyPatch):
    """The single-process reference runs in this process: as the launched ones do, one thread (a
    gemm split over two threads rounds differently, 1e-4 relative in a gradient norm) and no state
    left by earlier tests (transformers' TrainingArguments exports ACCELERATE_MIXED_PRECISION, and
    accelerate keeps one AcceleratorState per process)."""
    import torch
    from accelerate.state import AcceleratorState

    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    AcceleratorState._reset_state(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    AcceleratorState._reset_state(True)


def _launch(args: list[str], tmp_path: Path) -> None:
    """Two CPU processes under ``accelerate launch`` (torchrun, gloo), this checkout first on the path.

    Not ``--cpu --num_processes 2``: accelerate (1.16) then runs its simple launcher, which starts
    ONE process unless mpirun is configured (``--mpirun_hostfile``). ``--multi_gpu`` starts the
    processes through torchrun, and ``ACCELERATE_USE_CPU`` puts them on the CPU (gloo)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                                        os.environ.get("PYTHONPATH", "")]),
           "ACCELERATE_USE_CPU": "true", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr[-4000:]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if json.loads(line).get("kind", "train") == "train"]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= ATOL + RTOL * abs(b)


def _same_run(one: Path, two: Path, keys: tuple[str, ...]) -> None:
    ra, rb = _rows(one), _rows(two)
    assert [r["step"] for r in rb] == [r["step"] for r in ra]  # each step logged once, by one process
    for a, b in zip(ra, rb, strict=True):
        for key in keys:
            assert _close(b[key], a[key]), (key, a["step"], a[key], b[key])
    wa, wb = ckpt.read_tensors(one / "final"), ckpt.read_tensors(two / "final")
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert worst <= WEIGHTS_ATOL, worst


def _written_once(one: Path, two: Path) -> None:
    """The same checkpoints as one process, one copy of each file, plus process 1's optimiser state."""
    for name in sorted(p.name for p in (one / "checkpoints").iterdir()):
        files_one = sorted(p.name for p in (one / "checkpoints" / name).iterdir())
        files_two = sorted(p.name for p in (two / "checkpoints" / name).iterdir())
        assert files_two == sorted([*files_one, "state-rank1.pt"]), (name, files_one, files_two)
    names = [sorted(p.name for p in (run / "checkpoints").iterdir()) for run in (one, two)]
    assert names[0] == names[1]


def _recipe(tmp_path: Path, out: Path, batch: int, steps: int) -> Path:
    recipe = {"model": "tiny", "seed": 0, "output_dir": str(out), "unfreeze_layers": 1,
              "sft": {"data": [str(SHOTS)], "learning_rate": 0.01, "max_steps": steps,
                      "per_device_train_batch_size": batch, "gradient_accumulation_steps": 1, "save_steps": 1,
                      "save_total_limit": 0, "lr_scheduler_type": "constant", "progress": False,
                      "mixed_precision": "no"}}
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_train_sft_under_two_processes_matches_one_and_resumes_exactly(tmp_path: Path, runner) -> None:
    from tracelang.cli import app

    one = tmp_path / "one"
    result = runner.invoke(app, ["train", "sft", "--config", str(_recipe(tmp_path, one, 4, 3)), "--no-eval"])
    assert result.exit_code == 0, result.output
    # two processes, 2 examples each: the same global batch of 4; stopped after step 2, then resumed to 3
    two = tmp_path / "two"
    _launch(["-m", "tracelang", "train", "sft", "--config", str(_recipe(tmp_path, two, 2, 2)), "--no-eval"], tmp_path)
    assert ckpt.read_meta(two / "sft" / "final")["step"] == 2
    _launch(["-m", "tracelang", "train", "sft", "--config", str(_recipe(tmp_path, two, 2, 3)), "--no-eval"], tmp_path)
    _same_run(one / "sft", two / "sft", ("loss", "grad_norm"))
    _written_once(one / "sft", two / "sft")


def test_grpo_under_two_processes_matches_one(tmp_path: Path) -> None:
    from launch_rl_toy import train

    one, two = tmp_path / "one", tmp_path / "two"
    train(one, 2)
    _launch([str(ROOT / "tests" / "launch_rl_toy.py"), str(two), "2"], tmp_path)
    rows = _rows(one / "rl")
    assert all(r["groups_used"] >= 1 for r in rows) and any(r["grad_norm"] > 0 for r in rows)  # rewards varied
    _same_run(one / "rl", two / "rl", ("loss", "grad_norm", "reward_mean", "groups_used", "completion_tokens"))
    _written_once(one / "rl", two / "rl")
