"""What `train export` writes beside the weights so that code that knows nothing of tracelang
(transformers' ``apply_chat_template``, vLLM's chat endpoint, lm-eval's ``--apply_chat_template``)
prompts the model exactly as it was trained: a chat template that renders the trained prompt
around the question, and a model card (README.md) that says how to use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..models.prompt import TEMPLATE_MARKER, Prompter, load_shots
from ..paths import SHOTS

_QUESTION = "\x00question\x00"  # cannot occur in a prompt; marks where the question goes


def trained_prompter(tokenizer: Any, meta: dict[str, Any]) -> Prompter:
    """The prompter a checkpoint was trained with: its prompt version, and its shots (if any)."""
    config = meta.get("config") or {}
    shots: list[dict] = []
    if config.get("shots"):
        source = Path(config["shots_from"]) if config.get("shots_from") else SHOTS
        shots = load_shots(source, int(config["shots"]), int(config.get("seed", 0)))
    return Prompter.for_version(tokenizer, meta.get("prompt_version"), shots)


def chat_template(prompter: Prompter) -> str:
    """A Jinja chat template whose rendering of ``[{"role": "user", "content": question}]`` is
    ``prompter.prompt(question)``, byte for byte. The prompt already ends where the trace starts, so
    ``add_generation_prompt`` adds nothing; an assistant message (a trace) is followed by EOS, as in SFT."""
    prefix, suffix = prompter.prompt(_QUESTION).split(_QUESTION)
    # json.dumps gives a double-quoted literal whose escapes (\n, \", \\, \uXXXX) Jinja reads the same way
    return (
        f"{TEMPLATE_MARKER}{prompter.version}: the question is the user message; the trace follows -#}}\n"
        "{%- for message in messages -%}\n"
        "{%- if message['role'] == 'user' -%}\n"
        f"{{{{- {json.dumps(prefix)} + (message['content'] | trim) + {json.dumps(suffix)} -}}}}\n"
        "{%- elif message['role'] == 'assistant' -%}\n"
        "{{- message['content'] + eos_token -}}\n"
        "{%- else -%}\n"
        "{{- raise_exception('a tracelang model takes the question as the user message, and no ' + message['role']"
        " + ' message') -}}\n"
        "{%- endif -%}\n"
        "{%- endfor -%}"
    )


def model_card(meta: dict[str, Any], prompter: Prompter, checkpoint: Path) -> str:
    """README.md for the exported directory: what the model is, and how to prompt and decode it."""
    config = meta.get("config") or {}
    base = meta.get("base_model", "?")
    front = ["---", "library_name: transformers", "pipeline_tag: text-generation", "tags:", "- tracelang",
             "- math", "- gsm8k"]
    if base not in ("tiny", "embedded") and not Path(str(base)).exists():
        front.append(f"base_model: {base}")
    front.append("---")
    example = prompter.prompt("A baker makes 12 rolls and sells 5. How many are left?")
    lines = [
        *front, "",
        "# A tracelang model",
        "",
        f"Trained with tracelang (stage `{meta.get('stage', '?')}`, {meta.get('step', '?')} steps) from `{base}`, "
        f"exported from `{checkpoint}`. It writes a tracelang trace for a math word problem: named quantities "
        "and `compute` steps that tracelang's runtime executes exactly. The answer is the runtime's, not the "
        "model's arithmetic.",
        "",
        "## Prompt",
        "",
        f"The tokenizer's chat template renders the prompt the model was trained with (`{prompter.version}`"
        + (f", {len(prompter.shots)} worked examples" if prompter.shots else ", no worked examples")
        + "): pass the question alone as the user message.",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        "tok = AutoTokenizer.from_pretrained(MODEL_DIR)",
        "model = AutoModelForCausalLM.from_pretrained(MODEL_DIR)",
        'messages = [{"role": "user", "content": "A baker makes 12 rolls and sells 5. How many are left?"}]',
        "ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\")",
        "out = model.generate(ids, max_new_tokens=320)",
        "trace = tok.decode(out[0, ids.shape[-1]:], skip_special_tokens=True)",
        "```",
        "",
        "The rendered prompt for that question:",
        "",
        "```text",
        example.rstrip("\n"),
        "```",
        "",
        "## Decoding and checking",
        "",
        "Free decoding can write traces that do not parse. tracelang decodes under its grammar and runs the trace:",
        "",
        "```bash",
        "tracelang solve \"A baker makes 12 rolls and sells 5. How many are left?\" --model MODEL_DIR",
        "tracelang eval --model MODEL_DIR --out runs/eval   # GSM-8K test, predictions + metrics + report",
        "```",
        "",
        "With vLLM, constrain the syntax with the exported grammar (`tracelang decode export --format vllm`); "
        "check and run the output with `tracelang check` / `tracelang run`.",
        "",
        "## Training",
        "",
        "| setting | value |",
        "| --- | --- |",
    ]
    for key in ("learning_rate", "max_steps", "num_train_epochs", "per_device_train_batch_size", "loss_vocab",
                "dtype", "seed"):
        if key in config:
            lines.append(f"| {key} | {config[key]} |")
    if config.get("peft"):
        lines.append(f"| peft | LoRA r={config['peft'].get('r')}, merged into the weights |")
    lines += [f"| code revision | {meta.get('code_revision') or 'unknown'} |", ""]
    return "\n".join(lines) + "\n"
