"""Eval generation on the three backends, side by side in one run: transformers, vLLM offline, and the openai
backend against `vllm serve` of the same checkpoint (started here on 127.0.0.1, stopped by pid).

Same arith conversations, both attempts (attempt 2 continues the transformers backend's attempt 1, so every
engine reads the same prompts), greedy, same max tokens. Prints generated tokens per second of each backend and
the ratios to transformers, and greedy parity: the share of identical answers, and at each answer that differs,
the gap between the two candidate tokens' log-probabilities (under the transformers model) at the first
differing position, i.e. whether it is a near tie that arithmetic order can flip. Writes results/backends/.

Runs in the vLLM environment (`make setup-vllm`):

    .venv-vllm/bin/python bench/bench_backends.py --model models/smollm2-135m-instruct --conversations 200
    .venv-vllm/bin/python bench/bench_backends.py --model models/base-seed0 --conversations 200 --no-serve
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")

ROOT = Path(__file__).resolve().parents[1]


def _conversations(n: int):
    from score_bench.tasks.arith import ArithTask

    task = ArithTask()
    return task, [task.first_prompt(p) for p in task.problems("test")[:n]]


def _timed(backend, conversations, params):
    started = time.perf_counter()
    out = backend.generate(conversations, params)
    return out, time.perf_counter() - started


def _gap(reference, conversation, a, b) -> float:
    import torch

    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    if k >= min(len(a), len(b)):  # one is a prefix of the other: compare the token against end of turn
        return float("nan")
    tokens = torch.tensor([reference.render(conversation) + list(a[:k])])
    with torch.inference_mode():
        logp = torch.log_softmax(reference.model(input_ids=tokens).logits[0, -1].float(), -1)
    return abs(float(logp[a[k]] - logp[b[k]]))


class _Serve:
    def __init__(self, model: str, log: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
        # not the `vllm serve` script: vllm-cpu's asks for a distribution named "vllm" and dies
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--host", "127.0.0.1", "--port",
                   str(self.port), "--served-model-name", "bench", "--dtype", "float32", "--enforce-eager",
                   "--max-model-len", "2048", "--generation-config", "vllm"]
        self.process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        import httpx

        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"vllm serve exited; see {log}")
            try:
                if httpx.get(f"{self.url}/models", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(2)
        self.stop()
        raise SystemExit(f"vllm serve not ready; see {log}")

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--no-serve", action="store_true", help="skip the openai -> vllm serve column")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "backends")
    args = parser.parse_args()

    from score_bench.harness.contracts.generation import GenerationParams
    from score_bench.harness.generation.backends import load_backend
    from score_bench.harness.runtime.provenance import provenance, write_json_atomic

    params = GenerationParams(max_new_tokens=args.max_new_tokens)
    task, first = _conversations(args.conversations)
    reference = load_backend("transformers", model=args.model, dtype="float32", device="cpu", batch_size=32)
    from transformers import AutoConfig

    context = getattr(AutoConfig.from_pretrained(args.model), "max_position_embeddings", 2048)
    ours = load_backend("vllm", model=args.model, dtype="float32", enforce_eager=True,
                        max_model_len=min(2048, context))  # the embedded model's context is 512
    engines = {"transformers": reference, "vllm": ours}
    args.out.mkdir(parents=True, exist_ok=True)
    name = Path(args.model.rstrip("/")).name
    server = None if args.no_serve else _Serve(args.model, args.out / f"{name}-serve.log")
    try:
        if server is not None:
            engines["openai->vllm serve"] = load_backend("openai", model="bench", base_url=server.url,
                                                         max_concurrency=32)
        outputs = {key: [] for key in engines}
        seconds = {key: 0.0 for key in engines}
        conversations = first
        prompts = []
        for turn in (1, 2):
            prompts.append(conversations)
            for key, backend in engines.items():
                out, took = _timed(backend, conversations, params)
                outputs[key].append(out)
                seconds[key] += took
            conversations = [c + [{"role": "assistant", "content": a.text},
                                  {"role": "user", "content": task.correction_instruction}]
                             for c, a in zip(conversations, outputs["transformers"][-1])]
    finally:
        if server is not None:
            server.stop()
    tokens = {key: sum(c.n_tokens for turn in outs for c in turn) for key, outs in outputs.items()}
    speed = {key: tokens[key] / seconds[key] for key in engines}
    parity = {}
    for key in engines:
        if key == "transformers":
            continue
        same, gaps = 0, []
        for turn, (theirs, mine) in enumerate(zip(outputs["transformers"], outputs[key])):
            for conversation, a, b in zip(prompts[turn], theirs, mine):
                if a.text == b.text:
                    same += 1
                elif b.token_ids:
                    gaps.append(_gap(reference, conversation, a.token_ids, b.token_ids))
        total = 2 * len(first)
        parity[key] = {"identical": same, "total": total, "identical_share": same / total,
                       "first_divergence_logprob_gaps": gaps}
    summary = {"model": args.model, "conversations": len(first), "attempts": 2, "max_new_tokens": args.max_new_tokens,
               "greedy": True, "dtype": "float32", "tokens": tokens,
               "seconds": {k: round(v, 2) for k, v in seconds.items()},
               "tokens_per_s": {k: round(v, 1) for k, v in speed.items()},
               "ratio_to_transformers": {k: round(v / speed["transformers"], 2) for k, v in speed.items()},
               "parity_with_transformers": parity, "vllm_engine": ours.describe()["engine"],
               "load_average_1min_at_end": os.getloadavg()[0], **provenance()}
    print(f"{name}: {len(first)} conversations x 2 attempts, greedy, max {args.max_new_tokens} new tokens")
    for key in engines:
        line = f"  {key:22s} {speed[key]:8.1f} tok/s  x{speed[key] / speed['transformers']:.2f}"
        if key in parity:
            p = parity[key]
            worst = max((g for g in p["first_divergence_logprob_gaps"] if g == g), default=0.0)
            line += f"   identical {p['identical']}/{p['total']}, largest first-divergence gap {worst:.2g}"
        print(line)
    write_json_atomic(args.out / f"{name}.json", summary)
    print(f"wrote {args.out / (name + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
