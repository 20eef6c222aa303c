"""Where a SCoRe step's memory goes: resident memory (Linux /proc/self/status) at the boundaries of one Stage I
step, with the peak of each phase (VmHWM, reset after each mark through /proc/self/clear_refs) and the bytes the
training sampler's prefix KV store holds after sampling and after scoring.

    nice -n 10 python bench/probe_step_memory.py --model models/smollm2-135m-instruct --batch-size 32 \\
        --micro-batch-size 8 --max-new-tokens 16

Prints one JSON line per phase: init (both models loaded), sampled, encoded, backward, optimizer_step. Linux only.
"""

from __future__ import annotations

import argparse
import json
import tempfile


def memory() -> dict[str, int]:
    """VmRSS, VmHWM (peak since the last reset), RssAnon and RssFile, in MB."""
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, value = line.split(":", 1)
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) // 1024
    return out


def mark(phase: str, **extra) -> None:
    print(json.dumps({"phase": phase, **memory(), **extra}), flush=True)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM: the next mark shows the peak of the phase in between


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--micro-batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--generation-batch-size", type=int, default=8)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from score_bench.harness.training.config import build_config
    from score_bench.trainers.score import PRESETS, ScoreConfig, ScoreRun

    settings = {"model": args.model, "task": "arith", "output": tempfile.mkdtemp(prefix="probe-"), "seed": 0,
                "device": "cpu", "max_new_tokens": args.max_new_tokens, "stage1_steps": 1, "stage2_steps": 0,
                "generation_batch_size": args.generation_batch_size, "save_every": 0, "eval_every": 0,
                "batch_size": args.batch_size, "micro_batch_size": args.micro_batch_size}
    mark("start")
    run = ScoreRun(build_config(ScoreConfig, PRESETS, None, settings))
    mark("init")
    store = getattr(run.backend, "prefix_cache", None)

    def held() -> float | None:
        return round(store.used / 2**20, 1) if store is not None else None

    sample, backward, step = run.sample, run.backward, run.optimizer.step

    def probed_sample(problems):
        traces = sample(problems)
        mark("sampled", prefix_store_mb=held())
        return traces

    def probed_backward(*args, **kwargs):
        mark("encoded")
        result = backward(*args, **kwargs)
        mark("backward", prefix_store_mb=held())
        return result

    def probed_step(*args, **kwargs):
        result = step(*args, **kwargs)
        mark("optimizer_step")
        return result

    run.sample, run.backward, run.optimizer.step = probed_sample, probed_backward, probed_step
    row = run.train_step(1)
    print(json.dumps({"phase": "done", "attempt_tokens": row["attempt_tokens"]}), flush=True)


if __name__ == "__main__":  # the grader's worker processes import this module: run nothing then
    main()
