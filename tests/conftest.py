"""Shared fixtures: a tiny causal LM built here, with a locally trained tokenizer and a chat template.

Random weights: the tests that use it check plumbing (padding, resume, metrics bookkeeping), not skill.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

_CORPUS = [
    "What is 12 + 7? The answer is 19. Final Answer: The final answer is $19$. I hope it is correct.",
    "There might be an error in the solution above. Please correct the error, if any, and rewrite the solution.",
    "Answer the question in one short sentence. The capital of France is Paris.",
    "Compute 3 * (4 - 9) = -15. Simplify 6/8 = 3/4. 100 - 37 = 63. 2^5 = 32.",
    "system user assistant question answer correct wrong rewrite the answer only output the final answer",
]


def build_tiny_model(path: Path, *, chat_template: str | None = CHATML_TEMPLATE,
                     pad_token: str | None = "<|endoftext|>", seed: int = 0, hidden: int = 64, layers: int = 2,
                     vocab: int = 384) -> Path:
    """A Llama-family model of about 100k parameters saved with save_pretrained, tokenizer included.
    Untied embeddings: with tied ones a random model only repeats one token, which tests nothing."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(_CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>",
                                   pad_token=pad_token, bos_token=None)
    if chat_template is not None:
        fast.chat_template = chat_template
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, tie_word_embeddings=False,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None)
    model = LlamaForCausalLM(config)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """Path of a tiny Llama checkpoint with a ChatML template (pad and eos are different tokens)."""
    import torch

    # One intra-op thread: on a shared 2-core machine, OpenMP threads spin-waiting on a busy core make each tiny
    # op take milliseconds instead of microseconds. It also keeps float reductions in one fixed order.
    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def model_builder():
    """build_tiny_model, for tests that need a variant (no pad token, no chat template, another seed)."""
    return build_tiny_model


@pytest.fixture(scope="session")
def tiny_backend(tiny_model):
    """The tiny model loaded once through the public factory; build variants with TransformersBackend(...)."""
    from score_bench.harness.generation.backends import load_backend

    return load_backend("transformers", model=str(tiny_model), device="cpu", dtype="float32")


REAL_MODEL_DEFAULT = Path(__file__).resolve().parents[1] / "models" / "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def real_model() -> Path:
    """SmolLM2-135M-Instruct as a plain checkpoint: `make real-model` builds models/smollm2-135m-instruct (and
    `make test` builds it first); SCORE_BENCH_REAL_MODEL points elsewhere. Tests using it are marked real_model
    and keep to a few problems. Skipped, saying how to build it, when absent (a bare pytest run)."""
    import os

    import torch

    torch.set_num_threads(1)  # as tiny_model: one thread is the fastest on a shared 2-core machine
    path = Path(os.environ.get("SCORE_BENCH_REAL_MODEL") or REAL_MODEL_DEFAULT)
    if not (path / "config.json").is_file():
        pytest.skip(f"real model missing at {path}: run `make real-model` or set SCORE_BENCH_REAL_MODEL")
    return path


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """The embedded base model (models/base-seed0, which `make test` builds first; SCORE_BENCH_BASE_MODEL points
    elsewhere). Skipped, saying how to build it, when absent: a barely trained base cannot stand in."""
    import os

    path = Path(os.environ.get("SCORE_BENCH_BASE_MODEL") or REAL_MODEL_DEFAULT.parent / "base-seed0")
    if not (path / "model.safetensors").exists():
        pytest.skip(f"embedded base model not built at {path} (score-bench base-model --output {path} --seed 0)")
    return path
