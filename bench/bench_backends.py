"""Eval generation on each backend where it runs, side by side in one run: the engine's start and its generation
timed apart, and each engine bare beside the harness backend built on it, so the harness's own cost is a ratio.

Columns, one engine loaded at a time (start: load and one conversation outside the set; then attempt 1 and
attempt 2, timed; released):
- transformers: the harness backend (continuous batching, prefix reuse) and bare `model.generate` on the same
  token ids (left-padded batches of the same size, longest first);
- vllm: the harness backend at its default (eager on CPU) and a bare `vllm.LLM` on the same token ids with the
  same sampling parameters; with --compiled also the harness backend with torch.compile (--compile);
- with --serve: the openai backend against `vllm serve` of the same checkpoint (started on 127.0.0.1).

Same task conversations, both attempts (attempt 2 continues the transformers harness's attempt 1, so every engine
reads the same prompts), greedy, same max tokens. Prints load and generation seconds per column, generation
speed relative to the transformers harness, the harness's generation time over its bare engine's (its overhead),
and greedy parity with the transformers harness: identical answers, and at each differing answer the gap between
the two candidate tokens' log-probabilities at the first differing position (a near tie arithmetic order can flip).
Writes results/backends/<model>-<task>.json.

Runs in the vLLM environment (`make setup-vllm`), on a quiet machine:

    .venv-vllm/bin/python bench/bench_backends.py --model models/smollm2-135m-instruct --conversations 100 --compiled
    .venv-vllm/bin/python bench/bench_backends.py --model models/smollm2-135m-instruct --task mbpp --conversations 30 \\
        --max-new-tokens 256
"""

from __future__ import annotations

import argparse
import gc
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


class Column:
    """One engine: `load()` starts it, `generate(conversations)` returns (text, token ids) per conversation."""

    def __init__(self, name: str, engine: str):
        self.name, self.engine = name, engine
        self.load_s, self.generate_s, self.outputs = 0.0, 0.0, []

    def load(self) -> None: ...

    def generate(self, conversations) -> list[tuple[str, tuple[int, ...]]]: ...

    def release(self) -> None: ...


class HarnessColumn(Column):
    def __init__(self, name, engine, backend: str, **options):
        super().__init__(name, engine)
        self.backend_name, self.options = backend, options

    def load(self):
        from score_bench.harness.generation.backends import load_backend

        self.backend = load_backend(self.backend_name, **self.options)

    def generate(self, conversations):
        return [(c.text, c.token_ids) for c in self.backend.generate(conversations, self.params)]

    def release(self):
        self.backend = None


class BareTransformers(Column):
    """`model.generate` as a user would call it: left-padded batches, greedy, stopping on the end-of-turn ids."""

    def __init__(self, model: str, batch_size: int, max_new_tokens: int):
        super().__init__("transformers bare generate", "transformers")
        self.model_path, self.batch_size, self.max_new_tokens = model, batch_size, max_new_tokens

    def load(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from score_bench.harness.generation.backends.transformers import end_of_turn_ids

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=torch.float32).eval()
        self.stop_ids = sorted(end_of_turn_ids(self.tokenizer, self.model.generation_config))

    def generate(self, conversations):
        import torch

        from score_bench.harness.generation.backends.transformers import render_prompt

        prompts = [render_prompt(self.tokenizer, c, self.model_path) for c in conversations]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        answers: dict[int, tuple[int, ...]] = {}
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = max(len(prompts[i]) for i in rows)
            ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in rows])
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in rows])
            with torch.inference_mode():
                out = self.model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                          max_new_tokens=self.max_new_tokens, eos_token_id=self.stop_ids,
                                          pad_token_id=pad)
            for i, row in zip(rows, out[:, width:].tolist()):
                end = next((k + 1 for k, t in enumerate(row) if t in self.stop_ids), len(row))
                answers[i] = tuple(row[:end])
        return [(self._text(answers[i]), answers[i]) for i in range(len(prompts))]

    def _text(self, tokens):
        body = tokens[:-1] if tokens and tokens[-1] in self.stop_ids else tokens
        return self.tokenizer.decode(list(body), skip_special_tokens=True)

    def release(self):
        self.model = None


class BareVllm(Column):
    """`vllm.LLM.generate` on the same token ids and sampling parameters the harness backend builds."""

    def __init__(self, model: str, max_model_len: int, max_new_tokens: int):
        super().__init__("vllm bare LLM (eager)", "vllm")
        self.model_path, self.max_model_len, self.max_new_tokens = model, max_model_len, max_new_tokens

    def load(self):
        import vllm
        from transformers import AutoTokenizer, GenerationConfig

        from score_bench.harness.generation.backends.transformers import end_of_turn_ids

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.stop_ids = sorted(end_of_turn_ids(self.tokenizer, GenerationConfig.from_pretrained(self.model_path)))
        self.llm = vllm.LLM(model=self.model_path, dtype="float32", seed=0, enforce_eager=True,
                            enable_prefix_caching=True, max_model_len=self.max_model_len)

    def generate(self, conversations):
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        from score_bench.harness.generation.backends.transformers import render_prompt

        prompts = [TokensPrompt(prompt_token_ids=render_prompt(self.tokenizer, c, self.model_path))
                   for c in conversations]
        sampling = SamplingParams(temperature=0.0, max_tokens=self.max_new_tokens, stop_token_ids=self.stop_ids,
                                  skip_special_tokens=True)
        outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
        return [(o.outputs[0].text, tuple(o.outputs[0].token_ids)) for o in outputs]

    def release(self):
        self.llm = None


class ServedVllm(HarnessColumn):
    """The openai backend against `vllm serve` on 127.0.0.1; its load is the server's start until it answers."""

    def __init__(self, model: str, max_model_len: int, log: Path):
        super().__init__("openai -> vllm serve", "vllm serve", "openai")
        self.model_path, self.max_model_len, self.log = model, max_model_len, log

    def load(self):
        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}/v1"
        env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
        # not the `vllm serve` script: vllm-cpu's asks for a distribution named "vllm" and dies
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_path,
                   "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "bench", "--dtype", "float32",
                   "--enforce-eager", "--max-model-len", str(self.max_model_len), "--generation-config", "vllm"]
        self.process = subprocess.Popen(command, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"vllm serve exited; see {self.log}")
            try:
                if httpx.get(f"{url}/models", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            self.release()
            raise SystemExit(f"vllm serve not ready; see {self.log}")
        self.options = {"model": "bench", "base_url": url, "max_concurrency": 32}
        super().load()

    def release(self):
        super().release()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=120)


def _gap(reference, conversation, a, b) -> float:
    import torch

    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    if k >= min(len(a), len(b)):  # one is a prefix of the other: compare the token against end of turn
        return float("nan")
    tokens = torch.tensor([reference.render(conversation) + list(a[:k])])
    with torch.inference_mode():
        logp = torch.log_softmax(reference.model(input_ids=tokens).logits[0, -1].float(), -1)
    return abs(float(logp[a[k]] - logp[b[k]]))


def _start(column: Column, warmup) -> None:
    """Load, then answer one conversation outside the measured set: one-time costs of a first call (kernel
    selection, allocations) count as the engine's start, not as its generation."""
    started = time.perf_counter()
    column.load()
    column.generate(warmup)
    column.load_s = time.perf_counter() - started


def _run(column: Column, turns, warmup) -> None:
    _start(column, warmup)
    for conversations in turns:
        started = time.perf_counter()
        column.outputs.append(column.generate(conversations))
        column.generate_s += time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--task", default="arith")
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="the transformers columns' batch")
    parser.add_argument("--compiled", action="store_true", help="add the vllm harness backend with torch.compile")
    parser.add_argument("--serve", action="store_true", help="add the openai backend against vllm serve")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "backends")
    args = parser.parse_args()

    from transformers import AutoConfig

    from score_bench.harness.contracts.generation import GenerationParams
    from score_bench.harness.contracts.registry import load_task
    from score_bench.harness.runtime.provenance import provenance, write_json_atomic

    params = GenerationParams(max_new_tokens=args.max_new_tokens)
    task = load_task(args.task)
    first = [task.first_prompt(p) for p in task.problems("test")[:args.conversations]]
    context = min(2048, getattr(AutoConfig.from_pretrained(args.model), "max_position_embeddings", 2048))
    name = Path(args.model.rstrip("/")).name
    args.out.mkdir(parents=True, exist_ok=True)

    reference = HarnessColumn("transformers harness", "transformers", "transformers", model=args.model,
                              dtype="float32", device="cpu", batch_size=args.batch_size)
    columns: list[Column] = [
        BareTransformers(args.model, args.batch_size, args.max_new_tokens),
        HarnessColumn("vllm harness (default: eager)", "vllm", "vllm", model=args.model, dtype="float32",
                      max_model_len=context),
        BareVllm(args.model, context, args.max_new_tokens),
    ]
    if args.compiled:
        columns.append(HarnessColumn("vllm harness --compile", "vllm", "vllm", model=args.model, dtype="float32",
                                     max_model_len=context, enforce_eager=False))
    if args.serve:
        columns.append(ServedVllm(args.model, context, args.out / f"{name}-serve.log"))
    for column in (reference, *columns):
        column.params = params
    import vllm  # noqa: F401  imported once up front: the first vLLM column would pay the import in its start
    # The reference answers attempt 1 first: attempt 2's prompts continue its answers, for every column.
    warmup = [task.first_prompt(task.problems("train")[0])]
    _start(reference, warmup)
    started = time.perf_counter()
    reference.outputs.append(reference.generate(first))
    reference.generate_s = time.perf_counter() - started
    second = [c + [{"role": "assistant", "content": text}, {"role": "user", "content": task.correction_instruction}]
              for c, (text, _) in zip(first, reference.outputs[0])]
    started = time.perf_counter()
    reference.outputs.append(reference.generate(second))
    reference.generate_s += time.perf_counter() - started
    turns = (first, second)
    for column in columns:
        print(f"running {column.name} ...", flush=True)
        _run(column, turns, warmup)
        column.release()
        gc.collect()

    every = (reference, *columns)
    tokens = {c.name: sum(len(ids) for turn in c.outputs for _, ids in turn) for c in every}
    speed = {c.name: tokens[c.name] / c.generate_s for c in every}
    bare = {"transformers": "transformers bare generate", "vllm": "vllm bare LLM (eager)"}
    rows = {}
    for column in every:
        same, gaps = 0, []
        for turn, (theirs, mine) in enumerate(zip(reference.outputs, column.outputs)):
            for conversation, (text_a, ids_a), (text_b, ids_b) in zip(turns[turn], theirs, mine):
                if text_a == text_b:
                    same += 1
                elif ids_b:
                    gaps.append(_gap(reference.backend, conversation, ids_a, ids_b))
        row = {"engine": column.engine, "load_s": round(column.load_s, 2), "generate_s": round(column.generate_s, 2),
               "tokens": tokens[column.name], "tokens_per_s": round(speed[column.name], 1),
               "generation_speed_vs_transformers_harness": round(speed[column.name] / speed[reference.name], 2),
               "identical_to_transformers_harness": f"{same}/{2 * len(first)}",
               "first_divergence_logprob_gaps": [round(g, 4) for g in gaps]}
        if column.engine in bare and column.name != bare[column.engine]:
            row["harness_over_bare_seconds_per_token"] = round(
                (column.generate_s / tokens[column.name]) / (next(
                    c.generate_s / tokens[c.name] for c in every if c.name == bare[column.engine])), 2)
        rows[column.name] = row
    summary = {"model": args.model, "task": args.task, "conversations": len(first), "attempts": 2,
               "max_new_tokens": args.max_new_tokens, "greedy": True, "dtype": "float32",
               "transformers_batch_size": args.batch_size, "cpu_count": os.cpu_count(), "columns": rows,
               "load_average_1min_at_end": os.getloadavg()[0], **provenance()}
    print(f"{name} on {args.task}: {len(first)} conversations x 2 attempts, greedy, max {args.max_new_tokens} new "
          f"tokens")
    print(f"  {'column':32s} {'load s':>7s} {'gen s':>7s} {'tok/s':>7s} {'vs tf':>6s} {'/bare':>6s}  identical")
    for column_name, row in rows.items():
        overhead = row.get("harness_over_bare_seconds_per_token")
        worst = max((g for g in row["first_divergence_logprob_gaps"] if g == g), default=0.0)
        print(f"  {column_name:32s} {row['load_s']:7.1f} {row['generate_s']:7.1f} {row['tokens_per_s']:7.1f} "
              f"x{row['generation_speed_vs_transformers_harness']:5.2f} "
              f"{'' if overhead is None else f'x{overhead:.2f}':>6s}  {row['identical_to_transformers_harness']}"
              + (f" (largest first-divergence gap {worst:.2g})" if worst else ""))
    target = args.out / f"{name}-{args.task}.json"
    write_json_atomic(target, summary)
    print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
