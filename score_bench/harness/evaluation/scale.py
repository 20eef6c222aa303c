"""`score-bench scale`: parallel vs sequential self-correction at equal sample budgets (the paper's Figure 1).

At budget B the parallel arm samples B first attempts per problem and takes a majority vote over their answers;
the sequential arm samples B/2 first attempts, corrects each once and votes over the B/2 second attempts, so
both spend B generations. With max_turns T > 2, arm "sequential_t" for each t <= T votes over the t-th attempts
of floor(B/t) conversations (fewer conversations, more turns). pass@B is the unbiased chance that B first
attempts include a correct one.

One set of samples serves every budget: for the largest budget Bmax, conversations 0..Bmax/2-1 run T turns and
conversations Bmax/2..Bmax-1 run one turn; budget B takes conversations 0..B-1 (first attempts) and 0..B/t-1
(t-th attempts). Sampling is seeded per (sample, turn) by the rollout, so a prefix is what a run at that budget
alone would have drawn. Samples go to DIR/samples.jsonl through what eval uses too (harness.evaluation.sampling_run,
harness.evaluation.samples_log): the same identity check, lock, fsynced chunks and resume after a kill. scale.json and
votes.jsonl (every vote, for checking by hand) are computed from the samples file alone at the end.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.contracts.generation import Backend
from score_bench.harness.contracts.progress import Progress, phase
from score_bench.harness.evaluation import metrics
from score_bench.harness.evaluation.configs import ScaleConfig
from score_bench.harness.evaluation.result_schema import SCHEMA_VERSION
from score_bench.harness.evaluation.samples_log import SAMPLES_FILE, append_rows, recover_rows, sample_row
from score_bench.harness.evaluation.sampling_run import (CHUNK_BATCHES, CONFIG_FILE, check_conversations_fit,
                                                         check_same_run, fit_to_model, load_model, load_problems,
                                                         model_record, recorded_config, run_identity)
from score_bench.harness.generation.rollout import RolloutConfig, iter_rollout
from score_bench.harness.grading.voting import TIE_BREAK_RULE, group_answers, majority_vote
from score_bench.harness.runtime.guards import check_output_dir, check_output_not_model, output_lock
from score_bench.harness.runtime.provenance import provenance, write_json_atomic, write_jsonl_atomic

__all__ = ["run_scale", "SCALE_FILE", "VOTES_FILE"]

SCALE_FILE, VOTES_FILE = "scale.json", "votes.jsonl"
ANSWER_FIELDS = {"strict": ("extracted", "correct"), "flexible": ("extracted_flexible", "correct_flexible")}
"""The sample row fields (extracted answer, its verdict) each extraction mode votes with."""


def corrected_conversations(config: ScaleConfig) -> int:
    return max(config.budgets) // 2


def run_scale(config: ScaleConfig, progress: Progress | None = None, *, backend: Backend | None = None) -> dict:
    """Draw (or resume) the samples, then vote at every budget; returns scale.json's content."""
    started, started_from = time.time(), provenance()
    eval_config = config.as_eval()
    check_output_not_model(Path(config.output), config.model)
    check_output_dir(Path(config.output))
    task, problems = load_problems(eval_config)
    # a floor: only the corrected half of the conversations runs past turn 1
    check_conversations_fit(len(problems), eval_config.samples, 1, "the largest of --budgets, or --limit")
    if backend is None:
        backend = load_model(eval_config, progress)
    eval_config = fit_to_model(eval_config, task, problems, backend, eval_config.turns, eval_config.samples,
                               progress)
    config = with_values(config, max_new_tokens=eval_config.generation.max_new_tokens)
    model_info = model_record(config, backend)
    corrected = corrected_conversations(config)
    identity = {**run_identity(eval_config, problems, None, model_info),
                "scale": {"corrected_conversations": corrected}}
    out = Path(config.output)
    check_same_run(out, identity)  # everything above writes nothing, so bad input leaves no trace
    samples_path = out / SAMPLES_FILE
    with output_lock(out, "scale"):
        check_same_run(out, identity)
        if not (out / CONFIG_FILE).exists():
            write_json_atomic(out / CONFIG_FILE, identity)
        def turns(sample: int) -> int:  # the corrected conversations run every turn, the others one
            return config.max_turns if sample < corrected else 1

        done = recover_rows(samples_path, attempts=turns)
        resumed = len(done)
        chunk = config.batch_size * CHUNK_BATCHES
        params = eval_config.generation_params()
        # Corrected conversations first (all turns), then the remaining first attempts (one turn each).
        stages = [(RolloutConfig(turns=config.max_turns, samples=corrected, params=params, chunk_size=chunk),
                   set(done)),
                  (RolloutConfig(turns=1, samples=max(config.budgets), params=params, chunk_size=chunk),
                   set(done) | {(p.id, k) for p in problems for k in range(corrected)})]

        def write(traces) -> None:  # in the grading thread, the moment a chunk is graded (as eval does)
            append_rows(samples_path, [sample_row(trace) for trace in traces])

        for rollout_config, skip in stages:
            for _ in iter_rollout(task, problems, backend, rollout_config, skip=skip, progress=progress,
                                  on_graded=write):
                pass
        rows = recover_rows(samples_path, attempts=turns)
        with phase(progress, "voting", None):
            result, votes = summarize_scale(config, task, problems, rows)
        result.update({"model": model_info, "config": recorded_config(config, identity), "resumed_rows": resumed,
                       "wall_time_s": round(time.time() - started, 3), **started_from})
        write_jsonl_atomic(out / VOTES_FILE, votes)
        write_json_atomic(out / SCALE_FILE, result)
    return result


def arms(config: ScaleConfig, budget: int) -> dict[str, tuple[int, int]]:
    """{arm: (attempt index voted over, conversations used)} at a budget; arms with no conversation are left out."""
    out = {"parallel": (0, budget)}
    for turn in range(2, config.max_turns + 1):
        if budget // turn >= 1:
            out["sequential" if turn == 2 else f"sequential_{turn}"] = (turn - 1, budget // turn)
    return out


def summarize_scale(config: ScaleConfig, task, problems, rows: Mapping[tuple[str, int], dict]
                    ) -> tuple[dict, list[dict]]:
    """scale.json's metrics and every vote, from the sample rows alone."""
    bmax, corrected = max(config.budgets), corrected_conversations(config)
    missing = [(p.id, k) for p in problems for k in range(bmax) if (p.id, k) not in rows]
    if missing:
        raise InputError(f"{config.output} is missing problem '{missing[0][0]}' sample {missing[0][1]}")
    answer_key, correct_key = ANSWER_FIELDS[config.extraction]
    if any(answer_key not in a for r in rows.values() for a in r["attempts"]):
        raise InputError(f"samples in {config.output} carry no '{answer_key}' field: this checkout or the run that "
                         f"drew them has no {config.extraction} extraction")
    attempts = {t: [[{"extracted": rows[(p.id, k)]["attempts"][t][answer_key],
                      "correct": rows[(p.id, k)]["attempts"][t][correct_key]}
                     for k in range(bmax if t == 0 else corrected)] for p in problems]
                for t in range(config.max_turns)}
    # every turn's grouping in one call, so the verifier sees each distinct answer once (code runs tests)
    grouped = group_answers([p for _ in attempts for p in problems],
                            [[a["extracted"] for a in cell] for t in attempts for cell in attempts[t]], task.verifier)
    groups = {t: grouped[t * len(problems):(t + 1) * len(problems)] for t in attempts}
    votes, per_budget = [], []
    for budget in sorted(config.budgets):
        entry: dict[str, Any] = {"budget": budget}
        correct_by_arm = {}
        for arm, (turn, n) in arms(config, budget).items():
            correct = []
            for p, cell, grouping in zip(problems, attempts[turn], groups[turn]):
                vote = majority_vote(grouping[:n], [a["extracted"] for a in cell[:n]],
                                     [a["correct"] for a in cell[:n]], seed=config.seed, problem_id=p.id,
                                     budget=budget, arm=arm)
                votes.append({"id": p.id, "budget": budget, "arm": arm, **asdict(vote)})
                correct.append(vote.correct)
            correct_by_arm[arm] = correct
            summary = metrics.summarize(np.array(correct)[:, None], seed=config.seed)["acc_t1"]
            entry[arm] = {"accuracy": summary["value"], "ci95": summary["ci95"], "conversations": n,
                          "attempt": turn + 1}
        first_hits = [sum(a["correct"] for a in cell) for cell in attempts[0]]
        entry["pass_at_budget"] = float(np.mean([metrics.pass_at_k(bmax, c, budget) for c in first_hits]))
        if "sequential" in correct_by_arm:
            parallel, sequential = (np.array(correct_by_arm[a])[:, None] for a in ("parallel", "sequential"))
            entry["sequential_minus_parallel"] = {
                **metrics.paired_bootstrap(parallel, sequential, "acc_t1", seed=config.seed),
                "mcnemar": metrics.mcnemar(correct_by_arm["parallel"], correct_by_arm["sequential"])}
        per_budget.append(entry)
    two_turn = [[[a[correct_key] for a in rows[(p.id, k)]["attempts"][:2]] for k in range(corrected)]
                for p in problems]
    result = {
        "schema_version": SCHEMA_VERSION,
        "budgets": per_budget,
        "single_sample": metrics.summarize(two_turn, seed=config.seed),
        "voting": {"tie_break": TIE_BREAK_RULE, "extraction": config.extraction,
                   "grouping": task.verifier.grouping()},
        "paired_test": "sequential − parallel accuracy: paired bootstrap over problems (harness.evaluation.metrics."
                       "paired_bootstrap) and exact McNemar on the per-problem vote outcomes",
        "counts": {"problems": len(problems), "max_budget": bmax, "corrected_conversations": corrected,
                   "generations": sum(len(r["attempts"]) for r in rows.values())},
        "task": {"name": config.task, "split": config.split, "problems": len(problems)},
        "generation": {"temperature": config.generation.temperature, "top_p": config.generation.top_p,
                       "max_new_tokens": config.generation.max_new_tokens, "seed": config.seed,
                       "backend": config.backend},
        "seed": config.seed,
    }
    return result, votes
