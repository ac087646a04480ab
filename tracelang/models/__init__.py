"""Causal LMs for tracelang: loading (embedded Gemma 3 270M, local paths, hub ids) and prompting."""

from .loading import LoadedModel, ModelError, load_model
from .prompt import PROMPT_VERSION, Prompter

__all__ = ["PROMPT_VERSION", "LoadedModel", "ModelError", "Prompter", "load_model"]
