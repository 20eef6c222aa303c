"""How often a sampled attempt's tokens differ from the tokenizer's canonical split of its decoded text.

Before issue #10 item 8 the trainers scored sampled attempts from their text, i.e. under the canonical split;
where a model sampled a non-canonical split, the policy gradient and the KL were taken on tokens that were not
the ones sampled. The trainers now score Attempt.token_ids (harness.training.encoding.encode_two_attempts); this
measures how often the old way was wrong: two-attempt rollouts at temperature 1 through the project's own backend and
rollout, counting the attempts whose sampled content ids differ from the re-tokenization of their text.

Measured:
- models/base-seed0 (embedded, arith), 256 problems x 2 attempts, max_new_tokens 48: 1 of 512 attempts differs
  (a lone byte token sampled mid-character decodes to U+FFFD, which re-encodes as three other tokens).
- SmolLM2-135M-Instruct, arith, 16 problems x 2 attempts, temperature 1, max_new_tokens 64: 2 of 32 attempts
  (6.2%; 1 of 16 first attempts, 1 of 16 second attempts) were sampled as a split the tokenizer would not produce
  (command below, about 5 minutes on a busy 2-core CPU). A small sample: the rate is somewhere around 1-20%.

    python bench/check_retokenization.py --model /work/models/smollm2-135m-instruct --task arith --problems 16 \\
        --max-new-tokens 64 --batch-size 16 --threads 1
"""

from __future__ import annotations

import argparse

import torch

from score_bench.harness.contracts.generation import GenerationParams
from score_bench.harness.contracts.registry import load_task
from score_bench.harness.generation.backends.transformers import TransformersBackend
from score_bench.harness.generation.rollout import RolloutConfig, rollout
from score_bench.harness.training.encoding import sampled_content


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/base-seed0")
    parser.add_argument("--task", default="arith")
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    backend = TransformersBackend.load(args.model, dtype="float32", device="cpu", batch_size=args.batch_size)
    tokenizer = backend.tokenizer
    task = load_task(args.task)
    problems = task.problems("train")[:args.problems]
    params = GenerationParams(max_new_tokens=args.max_new_tokens, temperature=1.0, seed=args.seed)
    traces = rollout(task, problems, backend, RolloutConfig(turns=2, params=params))
    differ, unusable, total = [0, 0], [0, 0], [0, 0]
    example = None
    for trace in traces:
        for turn, attempt in enumerate(trace.attempts):
            total[turn] += 1
            content = sampled_content(tokenizer, attempt.token_ids, attempt.text)
            if content is None:  # no ids or a text cut by a stop string: not comparable
                unusable[turn] += 1
                continue
            canonical = tokenizer(attempt.text, add_special_tokens=False)["input_ids"]
            if canonical != content:
                differ[turn] += 1
                if example is None:  # a few tokens either side of where the splits part
                    at = next(i for i, (a, b) in enumerate(zip(content + [None], canonical + [None])) if a != b)
                    example = (tokenizer.convert_ids_to_tokens(content[max(at - 4, 0):at + 6]),
                               tokenizer.convert_ids_to_tokens(canonical[max(at - 4, 0):at + 6]))
    for turn in range(2):
        print(f"attempt {turn + 1}: {differ[turn]}/{total[turn] - unusable[turn]} sampled attempts re-tokenize "
              f"differently ({unusable[turn]} not comparable)")
    all_differ, all_usable = sum(differ), sum(total) - sum(unusable)
    print(f"RESULT {all_differ}/{all_usable} = {all_differ / max(all_usable, 1):.1%} of attempts "
          f"({args.model}, {args.task}, temperature 1.0, max_new_tokens {args.max_new_tokens})")
    if example:
        print("first difference, sampled vs canonical (around where they part):")
        print("  ", example[0])
        print("  ", example[1])


if __name__ == "__main__":
    main()
