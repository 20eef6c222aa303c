"""The embedded default model: a tiny Llama with a locally trained tokenizer and chat template, pre-trained on
arith so that it is right often but not always at attempt 1 and knows the two-attempt format. Built offline
in minutes, saved with save_pretrained like any checkpoint (see SPEC "The embedded default model")."""

from score_bench.embedded.build import build_base_model
from score_bench.embedded.config import BaseModelConfig

__all__ = ["BaseModelConfig", "build_base_model"]
