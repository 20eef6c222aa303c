"""Peak memory (RSS, CPU) of SCoRe training steps on a real model, side by side in one run, each configuration in
a fresh child process whose peak RSS the parent reads from os.wait4 (the child's own getrusage, ru_maxrss):

  micro   batch 8, 32, 128 scored in micro-batches of 8 (micro_batch_size): the peak should stay flat as the
          batch grows (target: batch 128 within 1.3x of batch 8);
  onepass batch 8 and 32 scored in one forward and one backward pass: the peak grows with the batch;
  ckpt    batch 8 with gradient checkpointing, against one-pass batch 8 (the same step without it, run just
          before it beside the same batch-128 child): peak RSS and training tokens/s (the step's time less its sampling: scoring, forward and backward, and
          the optimiser step);
  lora    a LoRA run (rank 16): one step, a merged checkpoint saved and loaded by `run_eval`; its peak RSS against
          the full-parameter run of the same batch shows one copy of the weights, not two.

Every child samples the same problems (same seed) with generation_batch_size 8 and short attempts
(--max-new-tokens, 16 by default so the whole run takes minutes on a shared 2-core CPU), so the configurations
differ only in how the batch is scored. Each child runs one Stage I step. Two children run at a time (peak RSS is
per process); timings are wall-clock on a shared machine: compare the ratios, not the absolute numbers. The
results file is rewritten after each child ("complete": false until the last), so a run cut short keeps its rows,
and --resume measures only the configurations it lacks (its rows then come from more than one run: each row's
`measured_at` names the commit and model that measured it; the top-level `git` is the last run's).
Writes results/bench_train_memory.json.

    nice -n 10 python bench/bench_train_memory.py --model models/smollm2-135m-instruct --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from score_bench.harness.contracts.generation import GenerationSettings
from score_bench.harness.runtime.provenance import git_state, provenance

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "bench_train_memory.json"

CONFIGS = [
    # Two run at a time: the long batch-128 child first, beside all the others in turn.
    ("micro", {"batch_size": 128, "micro_batch_size": 8}),
    ("onepass", {"batch_size": 8}),
    ("ckpt", {"batch_size": 8, "gradient_checkpointing": True}),
    ("micro", {"batch_size": 8, "micro_batch_size": 8}),
    ("lora", {"batch_size": 8, "lora_r": 16, "lora_alpha": 32.0}),
    ("micro", {"batch_size": 32, "micro_batch_size": 8}),
    ("onepass", {"batch_size": 32}),
]


def child(settings: dict, threads: int) -> dict:
    """One configuration in this (fresh) process: the run's steps, timed; printed as JSON on the last line."""
    import torch

    torch.set_num_threads(threads)
    from score_bench.harness.training.config import build_config
    from score_bench.trainers.score import PRESETS, ScoreConfig, ScoreRun

    steps = settings.pop("steps")
    save_to = settings.pop("save_to", None)
    config = build_config(ScoreConfig, PRESETS, None, settings)
    run = ScoreRun(config)
    sampling = []
    sample = run.sample

    def timed_sample(problems):
        started = time.perf_counter()
        traces = sample(problems)
        sampling.append(time.perf_counter() - started)
        return traces

    run.sample = timed_sample
    rows = [run.train_step(1) for _ in range(steps)]
    train_seconds = sum(r["seconds"] for r in rows) - sum(sampling)
    tokens = sum(r["attempt_tokens"] for r in rows)
    result = {"steps": steps, "attempt_tokens": tokens, "sampling_seconds": round(sum(sampling), 2),
              "training_seconds": round(train_seconds, 2),
              "training_tokens_per_s": round(tokens / train_seconds, 1) if train_seconds > 0 else None,
              "loss": [r["loss"] for r in rows], "grad_norm": [r["grad_norm"] for r in rows]}
    if save_to:
        from score_bench.harness.evaluation.configs import EvalConfig
        from score_bench.harness.evaluation.eval_run import run_eval

        merged = run.save(Path(save_to) / "merged", {"steps": run.step})
        results = run_eval(EvalConfig(model=str(merged), task=config.task, output=Path(save_to) / "eval", limit=4,
                                      generation=GenerationSettings(max_new_tokens=16), batch_size=4, device="cpu"))
        result["merged_checkpoint"] = sorted(p.name for p in merged.iterdir())
        result["eval_loaded"] = {"problems": results["counts"]["problems"],
                                 "architecture": results["model"].get("architecture")}
    return result


def run_child(model: str, kind: str, values: dict, threads: int, max_new_tokens: int, scratch: Path) -> dict:
    settings = {"model": model, "task": "arith", "output": str(scratch / "out"), "seed": 0, "device": "cpu",
                "max_new_tokens": max_new_tokens, "generation_batch_size": 8, "stage1_steps": 1,
                "stage2_steps": 0, "save_every": 0, "eval_every": 0, "steps": 1, **values}
    if kind == "lora":
        settings["save_to"] = str(scratch / "lora")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(settings), "--threads", str(threads)],
                                stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps the child: its own rusage, ru_maxrss in KiB
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        printed, errors = out.read(), err.read()
    if proc.returncode != 0 or not printed.strip():
        raise SystemExit(f"{kind} {values} failed (exit {proc.returncode}, peak RSS "
                         f"{usage.ru_maxrss / 1024:.1f} MB when it ended):\n{errors[-3000:]}")
    result = json.loads(printed.strip().splitlines()[-1])
    return {"kind": kind, **values, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), **result,
            "wall_seconds": round(time.perf_counter() - started, 1)}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def ratios_of(rows: list[dict]) -> dict[str, float | None]:
    def pick(field: str, kind: str, **values) -> float | None:
        found = [r[field] for r in rows if r["kind"] == kind and "error" not in r
                 and all(r.get(k) == v for k, v in values.items())]
        return found[0] if found else None

    def peak(kind: str, **values) -> float | None:
        return pick("peak_rss_mb", kind, **values)

    return {
        "micro_peak_b128_over_b8": ratio(peak("micro", batch_size=128), peak("micro", batch_size=8)),
        "micro_peak_b32_over_b8": ratio(peak("micro", batch_size=32), peak("micro", batch_size=8)),
        "onepass_peak_b32_over_b8": ratio(peak("onepass", batch_size=32), peak("onepass", batch_size=8)),
        "onepass_over_micro_peak_b32": ratio(peak("onepass", batch_size=32), peak("micro", batch_size=32)),
        "ckpt_peak_on_over_off_b8": ratio(peak("ckpt", batch_size=8), peak("onepass", batch_size=8)),
        "ckpt_tokens_per_s_on_over_off_b8": ratio(pick("training_tokens_per_s", "ckpt", batch_size=8),
                                                  pick("training_tokens_per_s", "onepass", batch_size=8)),
        "lora_peak_over_full_b8": ratio(peak("lora"), peak("onepass", batch_size=8)),
    }


def write_report(args, rows: list[dict], final: bool) -> dict[str, float | None]:
    ratios = ratios_of(rows)
    ordered = sorted(rows, key=lambda r: r["config"])
    report = {"model": args.model_given, "model_note": args.model_note, "task": "arith", "max_new_tokens": args.max_new_tokens,
              "generation_batch_size": 8, "threads": args.threads, "parallel": args.parallel, "complete": final,
              "rows": ordered, "ratios": ratios, "target": "micro_peak_b128_over_b8 <= 1.3", **provenance()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.environ.get("SCORE_BENCH_REAL_MODEL", ""),
                        help="a plain transformers checkpoint (default: $SCORE_BENCH_REAL_MODEL)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per child")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--parallel", type=int, default=2, help="children at a time")
    parser.add_argument("--only", default="", help="comma-separated kinds to run (micro,onepass,ckpt,lora)")
    parser.add_argument("--max-batch", type=int, default=None, help="skip configurations with a larger batch")
    parser.add_argument("--output", type=Path, default=OUT)
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --output and measure only the configurations it lacks")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(json.loads(args.child), args.threads)))
        return
    if not args.model or not Path(args.model).is_dir():
        raise SystemExit(f"--model must be a checkpoint directory, got '{args.model}'")
    args.model_note, args.model_given = None, args.model
    config = json.loads((Path(args.model) / "config.json").read_text())
    if config.get("quantization_config", {}).get("quant_method") == "gguf":
        # An import from GGUF keeps its quantization_config, and transformers then refuses save_pretrained (the
        # LoRA child saves a checkpoint). The weights are plain floats: a copy of the config without it, beside
        # links to the same files, loads the same model and saves.
        plain = Path(tempfile.mkdtemp(prefix="plain-model-"))
        for item in Path(args.model).iterdir():
            if item.name != "config.json":
                (plain / item.name).symlink_to(item.resolve())
        config.pop("quantization_config")
        (plain / "config.json").write_text(json.dumps(config, indent=2))
        args.model_note = (f"{args.model} carries a gguf quantization_config that makes save_pretrained refuse; "
                           f"run on a temporary copy of its config without it, linked to the same weight files")
        args.model = str(plain)
    kinds = set(filter(None, args.only.split(","))) or {kind for kind, _ in CONFIGS}
    rows: list[dict] = []
    if args.resume and args.output.is_file():
        rows = [r for r in json.loads(args.output.read_text())["rows"] if "error" not in r]
    done = {r["config"] for r in rows}
    chosen = [(i, kind, values) for i, (kind, values) in enumerate(CONFIGS) if kind in kinds and i not in done
              and (args.max_batch is None or values["batch_size"] <= args.max_batch)]
    lock = threading.Lock()
    # Each row says which commit and model measured it: with --resume the rows come from several runs.
    measured_at = {**git_state(), "model": args.model_given}

    def one(item):
        index, kind, values = item
        try:
            row = {"config": index, "measured_at": measured_at,
                   **run_child(args.model, kind, values, args.threads, args.max_new_tokens, Path(scratch) / str(index))}
        except SystemExit as failed:  # one configuration failing (or killed) leaves the others running
            row = {"config": index, "kind": kind, **values, "error": str(failed).splitlines()[0]}
            print(row["error"], flush=True)
            with lock:
                rows.append(row)
                write_report(args, rows, final=False)
            return row
        with lock:
            rows.append(row)
            print(f"{kind:8} {json.dumps(values):60} peak RSS {row['peak_rss_mb']:8.1f} MB  "
                  f"train {row['training_tokens_per_s']} attempt tok/s  ({row['wall_seconds']} s)", flush=True)
            write_report(args, rows, final=False)  # what is done so far survives a run cut short

    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(one, chosen))
    ratios = write_report(args, rows, final=True)
    for name, value in ratios.items():
        print(f"{name:34} {value}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
