#!/usr/bin/env bash
# The main job on the embedded default (Gemma 3 270M): a verified corpus, k-shot prompts drawn
# from it, constrained decoding of a seeded GSM-8K test sample, and the report.
# N (default 8) sets the sample size; OUT (default runs/demo) the output directory.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/demo}
N=${N:-8}
mkdir -p "$OUT"
echo "== the language: example traces"
tracelang check corpora/examples/*.yaml
echo "== a verified corpus from our templates"
tracelang corpus generate --n 500 --seed 0 --out "$OUT/corpus.jsonl"
tracelang corpus stats "$OUT/corpus.jsonl"
echo "== GSM-8K test, $N problems, embedded model, 2-shot from the corpus, constrained"
rm -rf "$OUT/eval"
tracelang eval --model embedded --split test --n "$N" --seed 42 --shots 2 --shots-from "$OUT/corpus.jsonl" \
  --out "$OUT/eval"
cat "$OUT/eval/report.md"
