"""Generation throughput of `score-bench eval`, side by side in one run, on the same problems and model:

  eval     the two-attempt rollout as run_eval runs it (TransformersBackend: continuous batching, KV cache,
           attempt 2 reusing attempt 1's cache, grading in a worker thread), greedy;
  naive    what the seed project did: model.generate once per prompt, unbatched, attempt 1 then attempt 2;
  ceiling  the model's raw decode throughput at the same batch size: timed forward passes with a KV cache of the
           same shape and nothing else (no sampling, no bookkeeping, no prefill), so no generator can beat it.

Targets: eval >= 8x naive, eval >= 50% of ceiling. Greedy outputs of eval and naive are compared text by text.
The ceiling counts the prefill passes too: a generator must read its prompt, and with short answers reading it is
most of the work. The ceiling reads every prompt in full, as the naive loop does, so ceiling / naive is the most
batching alone can gain on this machine; the eval can pass it only by reading less (reusing attempt 1's cache).
Writes results/bench_generation.json.

    python bench/bench_generation.py                      # models/base-seed0 if built, else a random 3M Llama
    python bench/bench_generation.py --model PATH --problems 128 --batch-size 32 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
EMBEDDED = ROOT / "models" / "base-seed0"
"""Where `make demo` / `score-bench base-model` put the embedded base model."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="checkpoint dir (default: the embedded model)")
    parser.add_argument("--problems", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    # One thread by default: the machines this runs on are shared 2-core boxes, where a second OpenMP thread
    # waiting on a busy core makes every small op slow and the comparison noisy.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="timed eval runs; the fastest counts")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "bench_generation.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from score_bench.harness.contracts.generation import GenerationParams
    from score_bench.harness.contracts.registry import load_task
    from score_bench.harness.generation.backends.transformers import TransformersBackend
    from score_bench.harness.generation.rollout import RolloutConfig, rollout
    from score_bench.harness.runtime.provenance import provenance, write_json_atomic

    with tempfile.TemporaryDirectory() as scratch:
        model_path, model_note = pick_model(args.model, Path(scratch))
        backend = TransformersBackend.load(str(model_path), dtype="float32", device="cpu",
                                           batch_size=args.batch_size)
        task = load_task("arith")
        problems = task.problems("test")[:args.problems]
        params = GenerationParams(max_new_tokens=args.max_new_tokens)
        print(f"model {model_path} ({backend.describe()['parameters']:,} parameters; {model_note}), "
              f"{len(problems)} arith problems x 2 attempts, batch {args.batch_size}, {args.threads} thread(s)")

        rollout(task, problems[:args.batch_size], backend, RolloutConfig(params=params))  # warm-up
        eval_seconds = float("inf")
        for _ in range(args.repeats):  # best of a few: other processes on a shared machine only ever slow a run
            if backend.prefix_cache is not None:
                backend.prefix_cache.tokens_reused = 0  # the runs are identical: keep the last one's count
            started = time.perf_counter()
            traces = rollout(task, problems, backend, RolloutConfig(params=params, chunk_size=4 * args.batch_size))
            eval_seconds = min(eval_seconds, time.perf_counter() - started)
        eval_tokens = sum(a.n_tokens for t in traces for a in t.attempts)
        reused = backend.prefix_cache.tokens_reused if backend.prefix_cache is not None else 0
        eval_rate = eval_tokens / eval_seconds
        print(f"eval     {eval_tokens:6d} tokens in {eval_seconds:7.2f}s  {eval_rate:9.1f} tok/s")

        naive_tokens, naive_seconds, naive_texts = naive_loop(backend, task, problems, params)
        naive_rate = naive_tokens / naive_seconds
        print(f"naive    {naive_tokens:6d} tokens in {naive_seconds:7.2f}s  {naive_rate:9.1f} tok/s")
        identical = sum(texts == [a.text for a in t.attempts] for texts, t in zip(naive_texts, traces))

        # The ceiling decodes the same shapes as the eval: per attempt, the mean prompt (attempt 2's holds attempt 1
        # and the instruction) and the mean number of new tokens, weighted by the tokens each attempt generated.
        shapes, ceiling_seconds, decode_seconds = [], 0.0, 0.0
        for turn in range(2):
            prompt = round(statistics.mean(len(backend.render(list(t.messages[:len(t.messages) - 3 + 2 * turn])))
                                           for t in traces))
            tokens = sum(t.attempts[turn].n_tokens for t in traces)
            steps = max(2, round(tokens / len(traces)))
            rate, decode_rate = ceiling(backend, args.batch_size, prompt, steps, args.repeats + 1)
            shapes.append({"attempt": turn + 1, "prompt_tokens": prompt, "new_tokens": steps,
                           "tokens_per_s": rate, "decode_only_tokens_per_s": decode_rate})
            ceiling_seconds += tokens / rate
            decode_seconds += tokens / decode_rate
        ceiling_rate, decode_rate = eval_tokens / ceiling_seconds, eval_tokens / decode_seconds
        print(f"ceiling  {ceiling_rate:9.1f} tok/s  (bare prefill + decode passes, batch {args.batch_size}, "
              f"same shapes; decode passes alone {decode_rate:.1f} tok/s)")
        mean_new = eval_tokens / (2 * len(problems))
        prompt_tokens = sum(len(backend.render(list(t.messages[:i]))) for t in traces
                            for i in (len(t.messages) - 3, len(t.messages) - 1))

    vs_naive, vs_ceiling, bound = eval_rate / naive_rate, eval_rate / ceiling_rate, ceiling_rate / naive_rate
    print(f"eval / naive   = {vs_naive:5.1f}x  (target >= 8x)")
    print(f"eval / ceiling = {vs_ceiling:5.1%}  (target >= 50%)")
    print(f"ceiling / naive = {bound:5.1f}x: what batching alone gains here, reading every prompt in full")
    print(f"prompt tokens reused from attempt 1's cache: {reused} of {prompt_tokens}")
    print(f"greedy outputs identical to the naive loop for {identical} of {len(problems)} problems")
    write_json_atomic(args.output, {
        "model": {"path": str(model_path), "note": model_note, **backend.describe()},
        "problems": len(problems), "task": "arith", "attempts": 2, "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens, "threads": args.threads, "mean_new_tokens_per_attempt": mean_new,
        "eval": {"tokens": eval_tokens, "seconds": eval_seconds, "tokens_per_s": eval_rate, "best_of": args.repeats},
        "naive": {"tokens": naive_tokens, "seconds": naive_seconds, "tokens_per_s": naive_rate},
        "ceiling": {"batch_size": args.batch_size, "tokens_per_s": ceiling_rate,
                    "decode_only_tokens_per_s": decode_rate, "per_attempt": shapes},
        "ratios": {"eval_over_naive": vs_naive, "eval_over_ceiling": vs_ceiling, "ceiling_over_naive": bound},
        "targets": {"eval_over_naive": 8, "eval_over_ceiling": 0.5},
        "met": vs_naive >= 8 and vs_ceiling >= 0.5,
        "identical_outputs": {"problems": len(problems), "identical": identical},
        "prompt_tokens": {"read_in_full_would_be": prompt_tokens, "reused_from_attempt_1": reused},
        "command": " ".join([Path(sys.executable).name, *sys.argv]), **provenance()})
    print(f"wrote {args.output}")


def pick_model(requested: Path | None, scratch: Path) -> tuple[Path, str]:
    if requested is not None:
        return requested, "given"
    if (EMBEDDED / "config.json").exists():
        return EMBEDDED, "the embedded base model"
    return random_llama(scratch / "random-llama"), "random weights: most attempts run to max_new_tokens"


def random_llama(path: Path) -> Path:
    """A ~3M-parameter Llama with a ChatML template and a byte-level BPE tokenizer trained here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from score_bench.harness.contracts.registry import load_task

    task = load_task("arith")
    corpus = [task.first_prompt(p)[-1]["content"] + " " + task.correction_instruction
              for p in task.problems("train")[:2000]]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=512, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
                          "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}"
                          "{{ '<|im_start|>assistant\n' }}{% endif %}")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(fast), hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=8,
        num_key_value_heads=4, max_position_embeddings=1024, tie_word_embeddings=False,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id))
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def naive_loop(backend, task, problems, params) -> tuple[int, float, list[list[str]]]:
    """One model.generate call per prompt, no batching: attempt 1, then attempt 2 on the extended conversation."""
    model, tokenizer = backend.model, backend.tokenizer
    stops = sorted(backend.stop_ids)
    tokens, texts = 0, []
    started = time.perf_counter()
    for problem in problems:
        conversation, attempts = list(task.first_prompt(problem)), []
        for turn in range(2):
            if turn:
                conversation += [{"role": "user", "content": task.correction_instruction}]
            ids = torch.tensor([backend.render(conversation)])
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=params.max_new_tokens, eos_token_id=stops,
                                 pad_token_id=backend.pad_id)[0, ids.shape[1]:].tolist()
            end = next((i for i, t in enumerate(out) if t in backend.stop_ids), None)
            new = out if end is None else out[:end + 1]
            tokens += len(new)
            text = tokenizer.decode(new[:end] if end is not None else new, skip_special_tokens=True)
            attempts.append(text)
            conversation.append({"role": "assistant", "content": text})
        texts.append(attempts)
    return tokens, time.perf_counter() - started, texts


@torch.inference_mode()
def ceiling(backend, batch_size: int, prompt_length: int, steps: int, repeats: int = 3) -> tuple[float, float]:
    """Bare forward passes of one perfectly packed batch: batch_size rows of prompt_length tokens prefilled, then
    `steps` one-token decode passes on the KV cache; nothing else (no templating, no sampling, no bookkeeping,
    no padding, no uneven lengths). Returns (tokens/s counting prefill and decode time, tokens/s of decode
    alone), each the best of `repeats`, so load from other processes does not lower it."""
    from transformers import DynamicCache

    model = backend.model
    cache_kw = backend.cache_arg
    best_total = best_decode = 0.0
    for _ in range(repeats):
        ids = torch.randint(0, model.config.vocab_size, (batch_size, prompt_length))
        mask = torch.ones_like(ids)
        cache = DynamicCache(config=model.config)
        started = time.perf_counter()
        logits = model(input_ids=ids, attention_mask=mask, use_cache=True, logits_to_keep=1,
                       **{cache_kw: cache}).logits
        decode_started = time.perf_counter()
        for step in range(steps - 1):  # the prefill already gave the first token's logits
            mask = torch.cat([mask, mask.new_ones((batch_size, 1))], dim=1)
            positions = torch.full((batch_size, 1), prompt_length + step)
            logits = model(input_ids=logits[:, -1].argmax(-1, keepdim=True), attention_mask=mask,
                           position_ids=positions, use_cache=True, **{cache_kw: cache}).logits
        ended = time.perf_counter()
        best_total = max(best_total, batch_size * steps / (ended - started))
        if steps > 1:
            best_decode = max(best_decode, batch_size * (steps - 1) / (ended - decode_started))
    return best_total, best_decode


if __name__ == "__main__":
    main()
