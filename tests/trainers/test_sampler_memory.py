"""The SCoRe step's sampling memory does not grow with the batch (issue #13): the rollout goes in chunks of
generation_batch_size conversations and the sampler's prefix KV store is emptied after each chunk and after each
held-out evaluation, instead of holding the KV of every conversation of the step (up to its 1 GiB budget)
through scoring and the optimiser step. Chunking changes no sample: samples are seeded per conversation."""

from __future__ import annotations

from score_bench.harness.generation.rollout import Trace
from score_bench.trainers.score import ScoreRun

from test_score_trainer import ParityTask, smoke


def tokens_of(traces: list[Trace]) -> list[tuple]:
    return [(t.problem.id, t.sample, tuple(a.token_ids for a in t.attempts)) for t in traces]


def test_rollout_keeps_at_most_two_chunks_of_kv_and_frees_it_before_scoring(tiny_model, tmp_path):
    score = ScoreRun(smoke(tiny_model, tmp_path, batch_size=6, samples_per_problem=2, generation_batch_size=3,
                           eval_every=1, eval_problems=4), task=ParityTask())
    run = score.run
    store = run.sampler.backend.prefix_cache
    held, add = [], store.add

    def recording_add(prompt, tokens, kv):
        add(prompt, tokens, kv)
        held.append(len(store.entries))

    store.add = recording_add
    traces = score.sample(run.next_problems())
    assert len(traces) == 12
    # Each conversation leaves at most two entries (its two attempts); the store is emptied after each chunk
    # once the next one is generated, so at most two chunks of 3 conversations are held, not all 12.
    assert held and max(held) <= 2 * 3 * 2 < 12 * 2
    assert not store.entries and store.used == 0

    whole = ScoreRun(smoke(tiny_model, tmp_path / "whole", batch_size=6, samples_per_problem=2,
                           generation_batch_size=12), task=ParityTask())
    assert tokens_of(whole.sample(whole.run.next_problems())) == tokens_of(traces)

    run.evaluate(1)
    assert run.evaluator.backend.prefix_cache.used == 0  # the evaluation's KV does not stay for training
