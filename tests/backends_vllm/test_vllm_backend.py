"""vLLM's offline engine against the transformers backend on SmolLM2 (fp32, CPU): greedy parity on arith
conversations (both attempts), seeded sampling, stop strings, prefix caching, token ids and loading errors."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("vllm")

from score_bench.harness.contracts.errors import InputError  # noqa: E402
from score_bench.harness.contracts.generation import GenerationParams  # noqa: E402
from score_bench.harness.generation.backends.transformers import render_prompt  # noqa: E402
from score_bench.tasks.arith import ArithTask  # noqa: E402

from float_tolerance import logprob_tolerance  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]
GREEDY = GenerationParams(max_new_tokens=48)


def _arith_conversations(n: int) -> list[list[dict]]:
    task = ArithTask()
    return [task.first_prompt(p) for p in task.problems("test")[:n]]


def _divergence_gap(reference, conversation, ids_a, ids_b) -> float:
    """|log p(a_k) - log p(b_k)| at the first position k where two generations differ, under the reference."""
    k = next(i for i, (a, b) in enumerate(zip(ids_a, ids_b)) if a != b)
    prompt = reference.render(conversation)
    tokens = torch.tensor([prompt + list(ids_a[:k])])
    with torch.inference_mode():
        logp = torch.log_softmax(reference.model(input_ids=tokens).logits[0, -1].float(), -1)
    return abs(float(logp[ids_a[k]] - logp[ids_b[k]]))


def test_greedy_matches_the_transformers_backend_on_both_attempts(engine, reference):
    first = _arith_conversations(8)
    correction = ArithTask().correction_instruction
    report = []
    for turn in (1, 2):
        ours = engine.generate(first, GREEDY)
        theirs = reference.generate(first, GREEDY)
        for conversation, a, b in zip(first, ours, theirs):
            if a.token_ids != b.token_ids:
                report.append((turn, _divergence_gap(reference, conversation, a.token_ids, b.token_ids)))
            else:
                assert a.text == b.text and a.n_tokens == b.n_tokens
        # attempt 2 continues the transformers backend's attempt 1, so both engines read the same prompt
        first = [c + [{"role": "assistant", "content": t.text}, {"role": "user", "content": correction}]
                 for c, t in zip(first, theirs)]
    assert len(report) <= 1, f"more than 1 of 16 generations differ: {report}"
    # Where they differ, the two candidates must be a near tie under the transformers model, one that fp32
    # reduction order can flip (each engine's log p may be logprob_tolerance off), not a different model.
    near_tie = 2 * logprob_tolerance(reference.model.config)
    assert all(gap < near_tie for _, gap in report), report


def test_seeded_sampling_is_reproducible_and_independent_of_the_batch(engine):
    conversations = _arith_conversations(4)
    params = GenerationParams(max_new_tokens=24, temperature=1.0, seed=7)
    once = engine.generate(conversations, params)
    again = engine.generate(conversations[::-1], params)[::-1]
    alone = engine.generate(conversations[2:3], params)
    assert [c.token_ids for c in once] == [c.token_ids for c in again]
    assert alone[0].token_ids == once[2].token_ids
    other = engine.generate(conversations, GenerationParams(max_new_tokens=24, temperature=1.0, seed=8))
    assert [c.token_ids for c in other] != [c.token_ids for c in once]
    # identical conversations in one call are distinct samples
    twins = engine.generate([conversations[0]] * 3, params)
    assert len({c.token_ids for c in twins}) > 1


def test_stop_strings_end_the_answer_before_them(engine):
    conversations = _arith_conversations(3)
    free = engine.generate(conversations, GREEDY)
    stop = " "
    stopped = engine.generate(conversations, GenerationParams(max_new_tokens=48, stop=(stop,)))
    for full, cut in zip(free, stopped):
        assert stop not in cut.text
        assert full.text.startswith(cut.text)
        assert cut.n_tokens < full.n_tokens


def test_token_ids_decode_to_the_text_and_end_with_the_end_of_turn_token(engine):
    out = engine.generate(_arith_conversations(2), GREEDY)
    for completion in out:
        assert completion.n_tokens == len(completion.token_ids)
        if completion.token_ids[-1] in engine.stop_ids:
            assert engine.tokenizer.decode(list(completion.token_ids[:-1]), skip_special_tokens=True) == completion.text


def test_prefix_caching_reuses_attempt_one_for_attempt_two(engine):
    block = engine.llm.llm_engine.vllm_config.cache_config.block_size
    # vLLM caches whole blocks (128 tokens on CPU): attempt 1 must span a few of them to be found again
    story = "A list of colours and where they are seen: " + ", ".join(f"colour {i} on wall {i}" for i in range(60))
    first = [[{"role": "user", "content": f"{story}. Which colour is on wall {n}?"}] for n in (3, 4)]
    engine.llm.reset_prefix_cache()
    answers = engine.generate(first, GREEDY)
    before = engine.tokens_reused
    second = [c + [{"role": "assistant", "content": a.text}, {"role": "user", "content": "Check and rewrite."}]
              for c, a in zip(first, answers)]
    engine.generate(second, GREEDY)
    prompt_one = len(render_prompt(engine.tokenizer, first[0], engine.source))
    full_blocks = prompt_one // block * block
    assert full_blocks >= block
    assert engine.tokens_reused - before >= 2 * full_blocks  # both conversations reuse all of attempt 1's blocks


def test_describe_records_the_engine(engine, smollm2):
    info = engine.describe()
    assert info["engine"]["name"] == "vllm" and info["engine"]["version"]
    assert info["engine"]["enable_prefix_caching"] is True and info["dtype"] == "float32"
    assert info["engine"]["enforce_eager"] is True  # the CPU default: compiling costs ~50 s for ~7% speed here
    assert info["weights_sha256"] and info["source"] == str(smollm2.resolve())


@pytest.mark.parametrize("options, message", [
    ({"model": "no/such/dir"}, "not found"),
    ({"dtype": "float8"}, "unknown dtype"),
    ({"tensor_parallel_size": 0}, "tensor parallel size must be at least 1"),
    ({"gpu_memory_utilization": 1.5}, "gpu memory utilization"),
    ({"data_parallel_size": 2}, "vllm serve --data-parallel-size 2"),
    ({"device": "cuda"}, "this vLLM build runs on cpu"),
])
def test_bad_options_fail_before_an_engine_starts(smollm2, options, message):
    from score_bench.harness.generation.backends import load_backend

    with pytest.raises(InputError, match=message):
        load_backend("vllm", **{"model": str(smollm2), **options})


def test_a_conversation_longer_than_max_model_len_is_refused_before_generating(engine, smollm2):
    """vLLM refuses a prompt over its max_model_len mid-run (an MBPP test problem of 2,099 prompt tokens did, at
    --max-model-len 2048): the harness checks every conversation against the engine's own limit first."""
    from score_bench.harness.runtime.guards import check_context

    assert engine.context == (2048, "vLLM max_model_len")
    fits = [{"role": "user", "content": "What is 2 + 2?"}]
    too_long = [{"role": "user", "content": "1 + " * 1500 + "1 = ?"}]
    again = [{"role": "user", "content": "Check your answer."}]
    check_context(engine.tokenizer, engine.context, [fits], again, 256, 2, str(smollm2))
    with pytest.raises(InputError, match=r"context of 2048 \(vLLM max_model_len\)"):
        check_context(engine.tokenizer, engine.context, [fits, too_long], again, 256, 2, str(smollm2))
