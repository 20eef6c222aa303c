"""How often a sampled attempt's tokens differ from the tokenizer's canonical split of its decoded text.

The trainers score sampled attempts from their text (the backends return text), i.e. under the canonical split;
where a model sampled a non-canonical split, the policy gradient and the KL are taken on tokens that were not the
ones sampled. This measures how often that happens for a model at temperature 1 on a task's training prompts.
Measured for models/base-seed0 on arith: 0 of 512 attempts differ.

    python bench/check_retokenization.py --model models/base-seed0 --task arith --problems 512
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from score_bench.harness.registry import load_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/base-seed0")
    parser.add_argument("--task", default="arith")
    parser.add_argument("--problems", type=int, default=512)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    task = load_task(args.task)
    problems = task.problems("train")[:args.problems]
    end = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    differ = 0
    for start in range(0, len(problems), 128):
        prompts = [tokenizer.apply_chat_template(task.first_prompt(p), tokenize=False, add_generation_prompt=True)
                   for p in problems[start:start + 128]]
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**batch, do_sample=True, temperature=1.0, max_new_tokens=args.max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id)
        for row in out[:, batch["input_ids"].shape[1]:].tolist():
            sampled = row[:next((i for i, t in enumerate(row) if t in end), len(row))]
            canonical = tokenizer(tokenizer.decode(sampled), add_special_tokens=False)["input_ids"]
            differ += canonical != sampled
    print(f"{differ}/{len(problems)} sampled attempts re-tokenize differently "
          f"({args.model}, {args.task}, temperature 1.0)")


if __name__ == "__main__":
    main()
