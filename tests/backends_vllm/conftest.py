"""The vLLM suite: runs in the .venv-vllm environment of `make test-vllm` (vLLM's CPU build), on the real
SmolLM2-135M-Instruct checkpoint. Without vLLM or the checkpoint, its tests skip and say why."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# vLLM's CPU settings, for a 2-core machine shared with other work: a small KV cache (GiB), no core pinning,
# no cores held back for the engine's own threads.
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
# The engine core in the test process: no spawned engine process to outlive a failed test, and the colocated
# trainer test needs it (weights loaded in place). The CLI and `vllm serve` tests run vLLM's default, separate.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


def _real_model_path() -> Path | None:
    for candidate in (os.environ.get("SCORE_BENCH_REAL_MODEL"), REPO / "models" / "smollm2-135m-instruct"):
        if candidate and (Path(candidate) / "config.json").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct: models/smollm2-135m-instruct (`make real-model`) or SCORE_BENCH_REAL_MODEL.

    A checkpoint dequantized from GGUF by transformers keeps `quantization_config: {quant_method: gguf}` in its
    config.json although its safetensors are plain floats; vLLM then refuses it ("Unknown quantization method:
    gguf"). Such a checkpoint is served here from a copy of its config without that entry, the other files
    linked (a workaround for the fixture, reported; the fix belongs where the checkpoint is written)."""
    path = _real_model_path()
    if path is None:
        pytest.skip("no SmolLM2 checkpoint: run `make real-model` or set SCORE_BENCH_REAL_MODEL")
    config = json.loads((path / "config.json").read_text())
    if config.get("quantization_config", {}).get("quant_method") != "gguf":
        return path
    clean = tmp_path_factory.mktemp("smollm2-plain")
    for item in path.iterdir():
        if item.name != "config.json":
            (clean / item.name).symlink_to(item.resolve())
    config.pop("quantization_config")
    (clean / "config.json").write_text(json.dumps(config, indent=2))
    return clean


@pytest.fixture(scope="session")
def engine(smollm2):
    """One in-process vLLM engine on SmolLM2, fp32, for the whole session (starting one takes ~30 s); eager, as
    vLLM runs on CPU by default."""
    pytest.importorskip("vllm")
    from score_bench.harness.generation.backends import load_backend

    return load_backend("vllm", model=str(smollm2), dtype="float32", max_model_len=2048,
                        in_process=True)


@pytest.fixture(scope="session")
def reference(smollm2):
    """The transformers backend on the same checkpoint, fp32 on CPU: the reference vLLM is compared with."""
    from score_bench.harness.generation.backends import load_backend

    return load_backend("transformers", model=str(smollm2), dtype="float32", device="cpu", batch_size=8)
