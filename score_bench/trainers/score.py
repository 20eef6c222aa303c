"""SCoRe (Kumar et al. 2024, "Training Language Models to Self-Correct via Reinforcement Learning",
arXiv 2409.12917): two stages of on-policy multi-turn REINFORCE against a frozen reference.

The loop, top to bottom: load the policy and a frozen copy of it (the reference, for both stages); for each
step draw problems, sample attempt 1 and attempt 2 from the current policy at temperature 1, grade both with
the task's verifier (the reward), score the sampled tokens under the policy and the reference, take one
optimiser step on the Stage I or Stage II loss (trainers/_losses.py), log a row. Stage I's weights are saved
to OUTPUT/stage1, the final ones to OUTPUT.

A step's traces are scored in micro-batches of `micro_batch_size` with gradient accumulation when set
(ScoreRun.backward, harness.training.accumulation): the same step as one pass, in the memory of one micro-batch. A log
row says `no_signal` when, within each group the baseline averages over, all traces earned the same rewards
(nothing to learn but the KL anchor); a run with no signal in any step ends with a warning naming the likely
cause (harness.training.learning_signal).

Every `eval_every` steps a greedy two-attempt rollout on a fixed held-out subset adds an "eval" row (Accuracy@t1,
Accuracy@t2, Δ) to the log. Every `save_every` steps a resumable state goes to OUTPUT/state/ (harness.training.resume);
starting the same command again continues from it, with the same result as a run that never stopped.

Everything but the stages, the rewards, the advantages and the loss is the run skeleton's (harness.training.run):
the sampler (`backend`), micro-batching, held-out rows, states, checkpoints, the log, and multi-process runs. Under
`accelerate launch` (DDP, or FSDP on CPU) each process samples and scores its own shard of each step's problems and
the gradients are averaged; the frozen reference is never wrapped (it takes no gradient). See docs/distributed.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import torch

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import NON_NEGATIVE
from score_bench.harness.contracts.progress import Progress, phase
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Problem, Status
from score_bench.harness.generation.rollout import Trace
from score_bench.harness.training.config import RunConfig, Trainer
from score_bench.harness.training.encoding import (EncodedBatch, TwoAttempts, encode_two_attempts, token_logprobs,
                                                   two_attempts_of)
from score_bench.harness.training.learning_signal import AttemptCounts, count_attempts, no_signal
from score_bench.harness.training.run import TrainingMethod, TrainingRun
from score_bench.trainers._losses import (StageLoss, baseline_group, sequence_kl, stage_advantages,
                                          stage_loss, stage_objective)

__all__ = ["ScoreConfig", "PRESETS", "ScoreTrainer", "ScoreRun"]


@dataclass(frozen=True)
class ScoreConfig(RunConfig):
    """Every knob of a SCoRe run. Defaults are the paper's MATH setting where it gives one."""

    stage1_steps: Annotated[int, NON_NEGATIVE] = 100
    """Optimiser steps of Stage I. The paper gives no step counts; these are placeholders to set per task."""
    stage2_steps: Annotated[int, NON_NEGATIVE] = 100
    alpha: Annotated[float, NON_NEGATIVE] = 10.0
    """Stage II reward-shaping bonus alpha * (r2 - r1) on attempt 2: rewards flipping wrong to right."""
    beta1: Annotated[float, NON_NEGATIVE] = 0.01
    """KL weight on both attempts in both stages."""
    beta2: Annotated[float, NON_NEGATIVE] = 0.1
    """Extra KL weight on attempt 1 in Stage I (the paper: 0.1 MATH, 0.25 MBPP): keeps attempt 1 near the base
    model while attempt 2 learns to correct."""
    stage2_attempt1_kl: Annotated[float, NON_NEGATIVE] = 0.0
    """Extra KL weight on attempt 1 in Stage II, on top of beta1. 0 is the paper. It exists because Stage II as
    published lets attempt 1 learn whatever attempt 2 learned, so on a task where that is easy the gap closes
    and Δ(t1,t2) returns to 0 (a trial here: Δ +.34 after Stage I, .00 after Stage II; keeping weight 1.0 on
    attempt 1 kept Δ at +.34). Set it to study how strongly attempt 1 should stay anchored."""
    stage1_credit_attempt1: bool = False
    """Whether attempt 1's log-probability also gets the policy gradient of r2 in Stage I (the literal
    REINFORCE reading of eq. 3). Off by default, as in public code (BY571): a trial here found that crediting
    it moves the skill into attempt 1 within 25 steps even with beta2 = 0.1, so nothing is left to correct."""
    kl_estimator: Literal["k1", "k3"] = "k1"
    """Per-token KL estimator on the sampled tokens: k1 = log(pi/pi_ref), k3 = r - 1 - log r (r = pi_ref/pi)."""
    kl_mode: Literal["reward", "loss"] = "reward"
    """'reward': the detached KL estimate is subtracted from the attempt's return (exact with k1).
    'loss': the k3 estimate is a differentiable loss term (GRPO style)."""
    baseline: Literal["none", "mean", "rloo"] = "rloo"
    """REINFORCE baseline per attempt: none, the mean return, or leave-one-out (unbiased)."""
    # The batches, their sampling, the optimiser, evaluation, saves, micro-batching and backend: RunConfig.

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kl_mode == "loss" and self.kl_estimator == "k1":
            raise InputError("kl_mode 'loss' needs kl_estimator 'k3': k1 in the loss has zero expected gradient")

    def traces_per_step(self) -> int:
        """Traces scored per optimiser step (harness.training.memory_estimate)."""
        return self.batch_size * self.samples_per_problem


_LAPTOP: dict[str, Any] = dict(learning_rate=1e-4, batch_size=64, stage1_steps=150, stage2_steps=50,
                               stage2_attempt1_kl=1.0, max_new_tokens=48, generation_batch_size=64, device="cpu",
                               eval_every=25, eval_problems=200)

PRESETS: dict[str, dict[str, Any]] = {
    "paper": dict(learning_rate=5e-6, alpha=10.0, beta1=0.01, beta2=0.1, temperature=1.0, batch_size=512),
    # The embedded 1M-parameter arith model on a 2-core CPU: short answers, small batches, a higher lr that
    # a tiny model needs to move within a few hundred steps. Stage I needs its 150 steps for attempt 1 to settle
    # back at the base model (held-out Acc@t1 was still .59 at step 100 on one seed). Stage II anchors attempt 1
    # (stage2_attempt1_kl=1.0): as published it taught attempt 1 the carry on both seeds tried and Δ fell back to
    # about 0 (results/arith_laptop/); anchored, attempt 2 reached held-out 1.0 within 50 Stage II steps.
    "laptop": _LAPTOP,
    # The embedded countdown model (`score-bench base-model --task countdown`, 3 numbers: `--task-option
    # max_count=3`) on the laptop budget, with Stage II as published. A try is about 20 tokens, so 75 hold
    # three. Rollouts at temperature 0.7, 16 problems x 4 samples with the leave-one-out baseline per problem:
    # at temperature 1 a second attempt that re-checks or continues paid no more than a blind retry, and the
    # batch baseline left a rare success too little signal (results/countdown/README.md).
    "laptop-countdown": {**_LAPTOP, "batch_size": 16, "samples_per_problem": 4, "temperature": 0.7,
                         "stage2_attempt1_kl": 0.0, "max_new_tokens": 75},
    # For tests and a first check of a setup: a couple of steps per stage. On the embedded arith model,
    # max_new_tokens 8 cut every answer before "Answer: N" was complete, so no attempt was ever extracted, every
    # reward was 0 and the weights never moved (issue #10 item 7); 32 tokens and 4 problems x 2 samples give
    # every trainer traces with differing rewards to learn from.
    "smoke": dict(learning_rate=1e-3, batch_size=4, samples_per_problem=2, stage1_steps=2, stage2_steps=2,
                  max_new_tokens=32, generation_batch_size=8, device="cpu", eval_problems=4),
}


class ScoreTrainer(Trainer):
    """The `score` trainer plugin (harness.training.config.Trainer)."""

    name = "score"
    config_class = ScoreConfig
    presets = PRESETS
    keeps_reference = True
    """A frozen copy of the base model is loaded next to the policy (harness.training.memory_estimate)."""

    def train(self, config: ScoreConfig, progress: Progress | None = None, task: Task | None = None) -> Path:
        """Run Stage I then Stage II, resuming from OUTPUT/state/ when a saved state is there; return the output
        directory (a loadable checkpoint). `task` overrides loading `config.task` by name (notebooks, tests)."""
        score = ScoreRun(config, task=task)
        score.stage(1, progress)
        score.stage(2, progress)
        return score.run.finish({"stage": 2, "steps": score.run.step})


class ScoreRun(TrainingMethod):
    """SCoRe on a TrainingRun (`run`): the stages, the rewards, the advantages and the loss. The frozen reference
    (run.reference) is loaded once, from the base checkpoint, and is the same object in both stages. SCoRe keeps
    no counters of its own: a saved state's step says where in which stage it was."""

    name = ScoreTrainer.name
    keeps_reference = ScoreTrainer.keeps_reference

    def __init__(self, config: ScoreConfig, task: Task | None = None):
        self.config = config
        self.run = TrainingRun(config, self, task)

    def sample(self, problems: list[Problem]) -> list[Trace]:
        """samples_per_problem graded two-attempt traces per problem of this process's shard of `problems`, from
        the current policy (TrainingRun.sample), grouped by problem (the samples of one problem are consecutive,
        for the baselines)."""
        traces = self.run.sample(problems, self.run.step)
        k = self.config.samples_per_problem
        n = len(traces) // k  # rollout order is sample-major: trace s * n + i is sample s of problem i
        return [traces[s * n + i] for i in range(n) for s in range(k)]

    def two_attempts(self, trace: Trace) -> TwoAttempts:
        first, second = trace.attempts
        return two_attempts_of(trace, first, second, self.config.generation.max_new_tokens)

    def stage(self, stage: int, progress: Progress | None = None) -> None:
        """Train until the step where `stage` ends (resumed runs pick up mid-stage); Stage I's end is saved to
        OUTPUT/stage1 before anything of Stage II runs."""
        run = self.run
        last = self.config.stage1_steps + self.config.stage2_steps
        start, end = (0, self.config.stage1_steps) if stage == 1 else (self.config.stage1_steps, last)
        if stage == 1 and run.step == 0 and run.evaluator.due(0):
            run.evaluate(stage)
        with phase(progress, f"SCoRe stage {'I' if stage == 1 else 'II'}", end - start) as advance:
            if run.step > start:
                advance(min(run.step, end) - start, "resumed")
            while run.step < end:
                row = self.train_step(stage)
                if run.evaluator.due(run.step) or (run.evaluator.every and run.step == last):
                    run.evaluate(stage)  # on the schedule, and the final model
                if self.config.save_every and run.step % self.config.save_every == 0:
                    run.save_state(stage)
                advance(1, f"stage {stage} acc@t1 {row['accuracy_t1']:.2f} acc@t2 {row['accuracy_t2']:.2f}")
        if stage == 1 and run.step == end:
            run.save(run.output / "stage1", {"stage": 1, "steps": run.step})

    def backward(self, stage: int, batch: EncodedBatch, rewards: tuple[torch.Tensor, torch.Tensor]) -> StageLoss:
        """The gradient of the Stage I or II loss of this process's batch, added to the policy's `.grad`, scored
        in micro-batches (config.micro_batch_size / micro_batch_tokens) with exactly the one-pass gradient.

        Reference log-probabilities are taken per micro-batch under no_grad. With kl_mode "reward" the returns
        hold each sample's KL, and an RLOO or mean baseline mixes the returns of a whole group, so with more
        than one micro-batch the policy first scores every micro-batch without gradient for the KL; then the
        advantages of the whole batch are fixed, and each micro-batch is scored again with gradient for its
        share of the loss. In one pass the KL comes from the same forward as the gradient."""
        config, run = self.config, self.run
        group = baseline_group(config.samples_per_problem, len(batch))
        parts = run.micro_batches(batch)
        pieces = [batch.rows(part) for part in parts]
        with torch.no_grad():
            ref = [token_logprobs(run.reference, p.input_ids, p.attention_mask) for p in pieces]
        if len(pieces) == 1:
            logp = token_logprobs(run.policy, pieces[0].input_ids, pieces[0].attention_mask)
            result = stage_loss(stage, logp, ref[0], pieces[0].attempt_masks, rewards, config, group)
            run.accelerator.backward(result.loss)
            return result
        kl = None
        if config.kl_mode == "reward":  # the bare model: a forward without gradient needs no DDP collective
            with torch.no_grad():
                parts_kl = [sequence_kl(token_logprobs(run.model, p.input_ids, p.attention_mask), r,
                                        p.attempt_masks, config.kl_estimator) for p, r in zip(pieces, ref)]
            kl = (torch.cat([k[0] for k in parts_kl]), torch.cat([k[1] for k in parts_kl]))
        returns, advantages = stage_advantages(stage, rewards, kl, config, group)
        scored_kl: list[tuple[torch.Tensor, torch.Tensor]] = []

        def loss_of(i: int) -> torch.Tensor:
            piece, part = pieces[i], parts[i]
            logp = token_logprobs(run.policy, piece.input_ids, piece.attention_mask)
            loss, piece_kl = stage_objective(stage, logp, ref[i], piece.attempt_masks,
                                             (advantages[0][part], advantages[1][part]), config, len(batch))
            scored_kl.append(piece_kl)
            return loss

        loss = run.accumulate(range(len(pieces)), loss_of)
        if kl is None:
            kl = (torch.cat([k[0] for k in scored_kl]), torch.cat([k[1] for k in scored_kl]))
        return StageLoss(loss, returns, advantages, kl)

    def train_step(self, stage: int) -> dict:
        run = self.run
        started = time.perf_counter()
        problems = run.next_problems()
        traces = self.sample(problems)  # this process's shard
        samples = [self.two_attempts(t) for t in traces]
        r1 = torch.tensor([float(t.attempts[0].correct) for t in traces], device=run.device)
        r2 = torch.tensor([float(t.attempts[1].correct) for t in traces], device=run.device)
        batch = encode_two_attempts(run.tokenizer, samples).to(run.device)
        result = self.backward(stage, batch, (r1, r2))  # DDP: gradients averaged over processes here
        # the sampler is checked on this step's prompts after its weight load
        step = run.update(result.loss, [run.task.first_prompt(p) for p in problems[:2]])
        means = {"reward_t1": float(r1.mean()), "reward_t2": float(r2.mean()), **result.stats()}
        counts = {"grading_errors": sum(a.verdict.status is Status.ERROR for t in traces for a in t.attempts),
                  "attempt_tokens": int(batch.attempt_masks[0].sum() + batch.attempt_masks[1].sum())}
        outcomes = count_attempts(traces, self.config.generation.max_new_tokens)
        rewards = (r1, r2)
        if run.world > 1:  # equal shards: the mean of the processes' means is the batch mean
            means = dict(zip(means, run.accelerator.reduce(
                torch.tensor(list(means.values()), device=run.device), "mean").tolist()))
            counts = dict(zip(counts, (int(v) for v in run.accelerator.reduce(
                torch.tensor(list(counts.values()), device=run.device), "sum").tolist())))
            outcomes = AttemptCounts.from_list(run.accelerator.reduce(
                torch.tensor(outcomes.as_list(), device=run.device), "sum").tolist())
            rewards = (run.accelerator.gather(r1), run.accelerator.gather(r2))
        # Stage I rewards attempt 2 only (r1 plays no part), so only r2 can carry its signal
        # (gathered shards are consecutive groups too: every process holds whole problems, equal batches)
        scored = [r.tolist() for r in (rewards if stage == 2 else rewards[1:])]
        silent = no_signal(scored, baseline_group(self.config.samples_per_problem, len(traces)), self.config.baseline)
        run.signal.observe(silent, outcomes, step_mixed=not no_signal(scored))
        seconds = time.perf_counter() - started
        tokens = counts["attempt_tokens"]
        row = {"kind": "train", "step": run.step, "stage": stage,
               "reward_t1": means["reward_t1"], "reward_t2": means["reward_t2"],
               "accuracy_t1": means["reward_t1"], "accuracy_t2": means["reward_t2"],
               "grading_errors": counts["grading_errors"],
               **{k: means[k] for k in result.stats()},
               "grad_norm": step.grad_norm,
               "no_signal": silent, "extracted": outcomes.extracted, "attempts": outcomes.attempts,
               "attempt_tokens": tokens, "seconds": round(seconds, 3),
               "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None, **step.sampler}
        run.log.append(row)
        return row
