"""Two-process star training through `accelerate launch` on CPU (gloo), as test_score_ddp.py does for score: a
loadable checkpoint, a state and a log from the main process, and a first update whose all-reduced gradient is
the one-process gradient of the whole minibatch, even though the processes' slices of it hold unequal numbers
of attempt-2 tokens (where a plain average of per-slice mean losses would be wrong)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.training.config import build_config
from score_bench.harness.training.encoding import encode_two_attempts
from score_bench.trainers._sft import SftRun, sft_loss
from score_bench.trainers.star import PRESETS, StarConfig, StarTrainer

from float_tolerance import logprob_tolerance, reduction_tolerance
from test_score_ddp import free_port
from test_score_resume import child_env, log_rows
from test_score_trainer import ParityTask

HERE = Path(__file__).resolve().parent
# smoke, 2 iterations of 2 rollout batches, here of 2 problems x 2 samples of 8 tokens (the random model's samples
# then agree across batch layouts), and 2 updates of up to 3 examples each: minibatch slices of 2 and 1 examples,
# with unequal attempt-2 token counts whatever was sampled (8 sampled tokens per attempt, cut, no end token).
SETTINGS = {"variant": "d_plus", "save_every": 1, "eval_every": 2, "eval_split": "train", "batch_size": 2,
            "max_new_tokens": 8, "sft_batch_size": 3}

SCRIPT = textwrap.dedent(f"""
    import json, sys

    if __name__ == "__main__":
        import torch
        torch.set_num_threads(1)
        sys.path.insert(0, {str(HERE)!r})
        from test_score_trainer import ParityTask
        from score_bench.harness.training.config import build_config
        from score_bench.trainers.star import PRESETS, StarConfig, StarTrainer
        StarTrainer().train(build_config(StarConfig, PRESETS, "smoke", json.loads(sys.argv[1])), task=ParityTask())
        # The script owns the process group accelerate started: destroyed before the interpreter exits, or gloo's
        # worker threads may outlive it ("terminate called without an active exception", a nonzero exit).
        from accelerate import PartialState
        PartialState().destroy_process_group()
""")


def grad_norm(model, tokenizer, pieces: list[tuple[list, float]]) -> float:
    """The norm of the gradient of sum(weight * sft_loss(piece)) at the model's weights."""
    model.zero_grad(set_to_none=True)
    sum(weight * sft_loss(model, encode_two_attempts(tokenizer, piece))[0] for piece, weight in pieces).backward()
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])))


def test_two_process_star_run_writes_a_checkpoint_and_takes_the_whole_minibatch_gradient(tiny_model, tmp_path,
                                                                                         monkeypatch):
    out = tmp_path / "ddp"
    settings = {**SETTINGS, "model": str(tiny_model), "output": str(out)}
    script = tmp_path / "train_star.py"
    script.write_text(SCRIPT)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port())]
    done = subprocess.run([*launch, str(script), json.dumps(settings)], env=child_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    assert AutoTokenizer.from_pretrained(out).chat_template == AutoTokenizer.from_pretrained(tiny_model).chat_template
    AutoModelForCausalLM.from_pretrained(out)
    assert json.loads((out / "state" / "meta.json").read_text())["world_size"] == 2
    rows = log_rows(out)
    assert [(r["kind"], r["step"]) for r in rows] == [("eval", 0), ("train", 1), ("train", 2), ("eval", 2),
                                                     ("train", 3), ("train", 4), ("eval", 4)]

    # One process on the same settings, keeping its first minibatch: the samples are seeded per problem, so the
    # gathered traces, the kept examples and the minibatch order are the same, and so must step 1 be.
    first: list = []
    update = SftRun._update
    monkeypatch.setattr(SftRun, "_update", lambda sft, examples: first.append(examples) or update(sft, examples))
    config = build_config(StarConfig, PRESETS, "smoke", {**settings, "output": str(tmp_path / "single")})
    alone = log_rows(StarTrainer().train(config, task=ParityTask()))
    assert rows[0] == alone[0]  # the base model's evaluation, on the main process
    for key in ("examples", "traces_sampled", "accuracy_t1", "accuracy_t2", "i_to_c", "batch_examples",
                "attempt2_tokens"):  # counts, and shares of them computed from the same gathered traces
        assert rows[1][key] == alone[1][key], key
    batch, tokenizer = first[0], AutoTokenizer.from_pretrained(tiny_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    # The mean NLL of the minibatch's attempt-2 tokens, each scored in another batch layout; the norm of its
    # gradient, whose elements are sums over the minibatch's token positions.
    loss, count = alone[1]["loss"], alone[1]["attempt2_tokens"]
    assert abs(rows[1]["loss"] - loss) <= logprob_tolerance(base.config) + reduction_tolerance(count) * loss
    tolerance = reduction_tolerance(int(encode_two_attempts(tokenizer, batch).attention_mask.sum()))
    assert abs(rows[1]["grad_norm"] - alone[1]["grad_norm"]) <= tolerance * alone[1]["grad_norm"]

    # The processes' slices of that minibatch hold unequal token counts: averaging their mean losses' gradients
    # (plain DDP) gives another gradient, and the run took the whole minibatch's one.
    slices = [batch[0::2], batch[1::2]]
    tokens = [int(encode_two_attempts(tokenizer, s).attempt_masks[1].sum()) for s in slices]
    assert len(batch) == rows[1]["batch_examples"] >= 2 and tokens[0] != tokens[1]
    whole = grad_norm(base, tokenizer, [(batch, 1.0)])
    plain_average = grad_norm(base, tokenizer, [(s, 0.5) for s in slices])
    assert abs(rows[1]["grad_norm"] - whole) <= tolerance * whole
    assert abs(plain_average - whole) > 100 * tolerance * whole

def test_a_batch_that_does_not_split_over_the_processes_is_refused(tiny_model, tmp_path, monkeypatch):
    from accelerate import Accelerator

    monkeypatch.setattr(Accelerator, "num_processes", property(lambda self: 2))
    config = with_values(build_config(StarConfig, PRESETS, "smoke"), model=str(tiny_model), output=str(tmp_path),
                     batch_size=3)
    with pytest.raises(InputError, match="batch_size 3 does not split over 2 processes"):
        SftRun(config, "star", task=ParityTask())
