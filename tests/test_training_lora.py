"""LoRA adapters through peft on the tiny model: training moves only the adapters, checkpoints are
peft's own files, resume is exact, a run continues from an adapter with a fresh optimiser, export
merges, and the decoder masks come back from the disk cache unchanged."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch

from tracelang.closure import source_digest
from tracelang.models import load_model, trained
from tracelang.models.prompt import BARE_PROMPT_VERSION
from tracelang.paths import SHOTS
from tracelang.training import checkpoint as ckpt
from tracelang.training import sft
from tracelang.training.batching import make_batch
from tracelang.training.config import ConfigError, DataSource, PeftSettings, SFTConfig, checked
from tracelang.training.sft import SFTTrainer

ROOT = Path(__file__).resolve().parents[1]
IDS = torch.tensor([[5, 17, 40, 3, 99, 12]])


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRACELANG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _cfg(out: Path, steps: int, **kw) -> SFTConfig:
    base = dict(model="tiny", output_dir=str(out), data=[DataSource(path=str(SHOTS))],
                peft=PeftSettings(r=4, lora_alpha=8, layers=1), prompt_instructions=False,
                learning_rate=2e-2, max_steps=steps, per_device_train_batch_size=2, gradient_accumulation_steps=2,
                save_steps=3, progress=False, warmup_ratio=0.2, tensorboard=False)
    base.update(kw)
    cfg = SFTConfig(**base)
    cfg.validate()
    return cfg


def _corpus_loss(trainer: SFTTrainer) -> float:
    examples = [ex for ex in trainer.per_source[0] if ex.masks is not None]
    batch = make_batch(examples, trainer.setup.loaded.tokenizer.pad_token_id, trainer.setup.table)
    with torch.no_grad():
        return float(-trainer.setup.pm(batch, "constrained").mean())


class _Stop(Exception):
    pass


def _quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lora")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRACELANG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        trainer = SFTTrainer(_cfg(out, 12), echo=_quiet)
        trainer.train()
    return out, trainer


def test_only_the_adapters_train_and_the_loss_falls(lora_run) -> None:
    out, trainer = lora_run
    pm = trainer.setup.pm
    names = set(pm.trained_parameters())
    assert names and all("lora_" in n and "layers.1." in n for n in names)
    assert pm.k == 1  # layer 0 is the frozen, cached prefix
    fresh = load_model("tiny").model.state_dict()
    for name, value in trainer.setup.adapter.get_base_model().state_dict().items():
        if "lora_" not in name:
            assert torch.equal(value, fresh[name.replace(".base_layer", "")]), name
    rows = [json.loads(x) for x in (out / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(r["grad_norm"] is not None for r in rows)
    trained = _corpus_loss(trainer)
    with trainer.setup.adapter.disable_adapter():
        base = _corpus_loss(trainer)
    # the tiny model's random tied head caps its logits near +-1, so no loss falls far; the
    # adapters alone still take a clear share off it
    assert trained < base - 0.05


def test_the_checkpoint_is_a_peft_adapter(lora_run) -> None:
    from peft import PeftModel

    out, _ = lora_run
    final = out / "sft" / "final"
    config = json.loads((final / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["layers_to_transform"] == [1]
    assert trained.read_meta(final)["prompt_version"] == BARE_PROMPT_VERSION
    wrapped = PeftModel.from_pretrained(load_model("tiny").model, str(final))
    merged = load_model(str(final))  # an adapter directory loads by path, merged into its base
    assert merged.prompt_version == BARE_PROMPT_VERSION
    with torch.no_grad():
        assert torch.allclose(wrapped(IDS).logits, merged.model(IDS).logits, atol=1e-5)
        assert not torch.allclose(merged.model(IDS).logits, load_model("tiny").model(IDS).logits, atol=1e-4)


def test_resume_reproduces_the_uninterrupted_run(lora_run, tmp_path: Path) -> None:
    out, _ = lora_run
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
    a = trained.read_tensors(out / "sft" / "final")
    b = trained.read_tensors(tmp_path / "sft" / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_continues_from_an_adapter_with_a_fresh_optimiser(lora_run, tmp_path: Path) -> None:
    out, _ = lora_run
    final = out / "sft" / "final"
    lines: list[str] = []
    trainer = SFTTrainer(_cfg(tmp_path, 2), echo=lines.append, init_checkpoint=final)
    trainer.prepare()
    saved = trained.read_tensors(final)
    live = trainer.setup.pm.trained_parameters()
    assert all(torch.equal(live[k].detach(), saved[k]) for k in live)  # starts where the adapter ended
    assert not trainer.optimizer.state  # and with a fresh optimiser
    trainer = SFTTrainer(_cfg(tmp_path, 2), echo=_quiet, init_checkpoint=final)
    trainer.train()
    meta = trained.read_meta(tmp_path / "sft" / "final")
    assert meta["continued_from"] == str(final) and meta["base_model"] == "tiny"
    # the continued run's adapter is the whole model: loading it does not apply the first one twice
    assert meta["init_checkpoint"] is None and trained.chain(tmp_path / "sft" / "final") == [tmp_path / "sft" / "final"]


def test_export_merges_the_adapter(lora_run, tmp_path: Path) -> None:
    out, _ = lora_run
    exported = ckpt.export(out / "sft" / "final", tmp_path / "full")
    assert not (exported / "adapter_config.json").exists() and (exported / "model.safetensors").is_file()
    full = load_model(str(exported))
    merged = load_model(str(out / "sft" / "final"))
    with torch.no_grad():
        assert torch.allclose(full.model(IDS).logits, merged.model(IDS).logits, atol=1e-5)


def _masks_again(tmp_path: Path) -> tuple[SFTTrainer, list]:
    """A new trainer on the same data, its masks read from the cache (or built)."""
    again = SFTTrainer(_cfg(tmp_path, 1), echo=_quiet)
    again.prepare()
    examples = [ex for xs in again.per_source for ex in xs]
    again.masks.ensure(examples)
    return again, examples


def test_masks_come_back_from_the_disk_cache(lora_run, tmp_path: Path) -> None:
    _, first = lora_run
    again, examples = _masks_again(tmp_path)
    assert again.masks.tally.counts["masks from the cache"] == len(examples)
    assert again.masks.tally.counts["masks built"] == 0
    before = {ex.id: ex.masks for xs in first.per_source for ex in xs if ex.masks is not None}
    assert before
    for ex in examples:
        if ex.id in before:
            a, b = before[ex.id], ex.masks
            assert len(a) == len(b)
            for (ka, kb) in zip(a.dense, b.dense, strict=True):
                assert (ka < 0) == (kb < 0)
                if ka >= 0:
                    assert torch.equal(first.setup.table.rows[ka], again.setup.table.rows[kb])
            assert all((x == y).all() for x, y in zip(a.sparse, b.sparse, strict=True))


def test_a_corrupt_cache_file_is_a_miss(lora_run, tmp_path: Path) -> None:
    again = SFTTrainer(_cfg(tmp_path, 1), echo=_quiet)
    again.prepare()
    store = again.masks.store
    for file in store.dir.glob("*/*.npz"):
        file.write_bytes(b"not an npz")
    examples = [ex for xs in again.per_source for ex in xs]
    again.masks.ensure(examples)
    assert again.masks.tally.counts["masks built"] == len(examples)
    assert all(ex.masks is not None for ex in examples)


def test_bfloat16_weights_need_adapters() -> None:
    with pytest.raises(ConfigError, match="dtype: bfloat16 needs peft"):
        checked(SFTConfig, {"data": ["x.jsonl"], "dtype": "bfloat16"})
    cfg = SFTConfig(data=[DataSource(path="x.jsonl")], dtype="bfloat16", peft=PeftSettings())
    cfg.validate()
    assert cfg.unfreeze_layers == 0 and cfg.train_lm_head == "none"
    with pytest.raises(ConfigError, match="peft.r"):
        checked(SFTConfig, {"data": ["x.jsonl"], "peft": {"r": 0}})


def test_export_prompts_as_trained_in_plain_transformers(lora_run, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from tracelang.models.prompt import Prompter

    out, _ = lora_run
    final = out / "sft" / "final"
    exported = ckpt.export(final, tmp_path / "full")
    meta = trained.read_meta(final)
    question = '  Ann has "3" boxes of 12 eggs.\nHow many eggs?\n'
    expected = Prompter.for_version(load_model("tiny").tokenizer, meta["prompt_version"]).prompt(question)
    plain = AutoTokenizer.from_pretrained(str(exported))  # transformers alone, no tracelang code
    messages = [{"role": "user", "content": question}]
    assert plain.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == expected
    card = (exported / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\n") and meta["prompt_version"] in card
    loaded = load_model(str(exported))  # tracelang itself reads the template as the trained prompt
    assert loaded.prompt_version == meta["prompt_version"]
    assert Prompter.for_version(loaded.tokenizer, loaded.prompt_version).prompt(question) == expected


@pytest.mark.parametrize("instructions", [True, False])
def test_the_exported_template_wraps_a_base_chat_template(instructions: bool) -> None:
    """A base with its own chat template (Gemma's turn markers): the exported template renders the
    base's rendering of the trained prompt."""
    from tracelang.models.prompt import Prompter
    from tracelang.models.tokenizer_store import tiny_bpe
    from tracelang.training.model_card import chat_template

    # copies: tiny_bpe() is cached and shared by every test in the session
    base = copy.deepcopy(tiny_bpe())
    base.chat_template = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' "
                          "else m['role'] }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
                          "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
    trained = Prompter(base, instructions=instructions)
    exported = copy.deepcopy(tiny_bpe())
    exported.chat_template = chat_template(trained)
    for question in ("What is 2 + 3?", " Tom's {bag} has \\ 4 `apples`.\n\n"):
        rendered = exported.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                                add_generation_prompt=True)
        assert rendered == trained.prompt(question)
    with pytest.raises(Exception, match="no system message"):
        exported.apply_chat_template([{"role": "system", "content": "x"}, {"role": "user", "content": "q"}],
                                     tokenize=False)


def test_a_later_stage_reads_the_prefix_states_from_disk(lora_run, tmp_path: Path) -> None:
    out, _ = lora_run
    final = out / "sft" / "final"
    warm = SFTTrainer(_cfg(tmp_path / "warm", 2), echo=_quiet, init_checkpoint=final)
    warm.train()
    assert warm.tally.counts["prefix states from disk"] > 0  # written by the first stage
    cold = SFTTrainer(_cfg(tmp_path / "cold", 2, prefix_store=False), echo=_quiet, init_checkpoint=final)
    cold.train()
    assert cold.prefix_store is None and "prefix states from disk" not in cold.tally.counts
    a = ckpt.read_tensors(tmp_path / "warm" / "sft" / "final")
    b = ckpt.read_tensors(tmp_path / "cold" / "sft" / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the very same states


def test_the_prefix_key_follows_the_frozen_weights_only(lora_run) -> None:
    from tracelang.training.prefix_store import frozen_digest

    _, trainer = lora_run
    base, k = trainer.setup.pm.base, trainer.setup.pm.k
    before = frozen_digest(base, k)
    with torch.no_grad():
        trained = next(p for n, p in base.named_parameters() if n.startswith(f"layers.{k}."))
        kept = trained.clone()
        trained.add_(1.0)
        assert frozen_digest(base, k) == before  # a trained layer is not part of the prefix
        trained.copy_(kept)
        frozen = next(p for n, p in base.named_parameters() if n.startswith("layers.0."))
        kept = frozen.clone()
        frozen.add_(1.0)
        assert frozen_digest(base, k) != before
        frozen.copy_(kept)
    assert frozen_digest(base, k) == before and frozen_digest(base, k - 1) != before


def test_an_edit_to_a_module_the_decoder_imports_is_a_cache_miss(lora_run, tmp_path: Path, monkeypatch) -> None:
    # numbers.py is imported by the guide through ir/scope, not named anywhere by hand
    copy_root = tmp_path / "tracelang"
    shutil.copytree(Path(sft.__file__).resolve().parents[1], copy_root, ignore=shutil.ignore_patterns("__pycache__"))
    edited = copy_root / "numbers.py"
    edited.write_text(edited.read_text() + "\n# edited\n")
    monkeypatch.setattr(sft, "source_digest", lambda name: source_digest(name, copy_root))
    again, examples = _masks_again(tmp_path)
    assert again.masks.tally.counts["masks built"] == len(examples)
    assert again.masks.tally.counts["masks from the cache"] == 0
