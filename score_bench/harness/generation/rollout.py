"""The multi-attempt rollout shared by evaluation and the trainers (Kumar et al. 2024, section 3).

Attempt 1 answers the task's first prompt; attempt k+1 sees the same conversation plus attempt k as an assistant
turn and the task's correction instruction as a new user turn. Work is cut into fixed chunks of
(problem, sample) units: a chunk is generated turn by turn, then graded in a worker thread while the next chunk
generates, handed to `on_graded` from that thread the moment it is graded (so a caller that writes it there
loses at most the chunk being generated when killed), and yielded whole. Progress counts generated attempts
and advances after every backend call, with the tokens/s of that call. Chunks depend only on the problem list, the sample count and the chunk size, so a
resumed run regenerates exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Annotated, Callable, Collection, Iterator, Mapping, Sequence

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import AT_LEAST_ONE, Settings
from score_bench.harness.contracts.generation import DEFAULT_MAX_NEW_TOKENS, Backend, GenerationParams
from score_bench.harness.contracts.progress import Progress, phase
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Message, Problem, Verdict
from score_bench.harness.grading.attempts import grade_attempts

__all__ = ["Attempt", "RolloutConfig", "Trace", "iter_rollout", "plan", "rollout"]

@dataclass(frozen=True)
class RolloutConfig(Settings):
    turns: Annotated[int, AT_LEAST_ONE] = 2
    """Attempts per conversation; the paper stops at 2, more shows where self-correction saturates."""
    samples: Annotated[int, AT_LEAST_ONE] = 1
    """Conversations per problem (pass@k); sample k of a problem always gets the same seeds."""
    params: GenerationParams = GenerationParams(max_new_tokens=DEFAULT_MAX_NEW_TOKENS)
    chunk_size: Annotated[int, AT_LEAST_ONE] = 128
    """Units generated and graded together: the unit of grading overlap and of resume. A few backend batches,
    so the backend can sort prompts by length across them."""


@dataclass(frozen=True)
class Attempt:
    text: str
    extracted: str | None
    verdict: Verdict
    n_tokens: int
    """Tokens the model generated for this attempt; 0 when the attempt was given."""
    given: bool = False
    """True for a fixed first attempt (repair evaluation): the model did not write it."""
    token_ids: tuple[int, ...] = ()
    """The sampled token ids (harness.contracts.generation.Completion.token_ids); empty when given or not reported."""
    flexible_verdict: Verdict | None = None
    """The verdict on the task's flexible extraction (its `extracted` is that extraction); None: as strict."""

    @property
    def correct(self) -> bool:
        return self.verdict.correct

    @property
    def flexible_correct(self) -> bool:
        return (self.flexible_verdict or self.verdict).correct


@dataclass(frozen=True)
class Trace:
    problem: Problem
    sample: int
    messages: tuple[Message, ...]
    """The whole conversation: first prompt, then each attempt, with the correction instruction between."""
    attempts: tuple[Attempt, ...]


def plan(problems: Sequence[Problem], samples: int) -> list[tuple[Problem, int]]:
    """All (problem, sample) units, sample-major, so one chunk mostly shares a sample index (one seed)."""
    return [(problem, sample) for sample in range(samples) for problem in problems]


def rollout(task: Task, problems: Sequence[Problem], backend: Backend, config: RolloutConfig, *,
            first_attempts: Mapping[str, str] | None = None, progress: Progress | None = None) -> list[Trace]:
    """Every trace, in plan order."""
    return [trace for chunk in iter_rollout(task, problems, backend, config, first_attempts=first_attempts,
                                            progress=progress) for trace in chunk]


def iter_rollout(task: Task, problems: Sequence[Problem], backend: Backend, config: RolloutConfig, *,
                 first_attempts: Mapping[str, str] | None = None, skip: Collection[tuple[str, int]] = frozenset(),
                 progress: Progress | None = None,
                 on_graded: Callable[[list[Trace]], None] | None = None) -> Iterator[list[Trace]]:
    """Graded traces chunk by chunk, leaving out the (problem id, sample) units in `skip` (already done).

    first_attempts maps problem id -> a given attempt 1 (repair evaluation); it must cover every problem.
    on_graded(traces) runs in the grading thread as soon as a chunk is graded, before the chunk is yielded."""
    if first_attempts is not None:
        missing = [p.id for p in problems if p.id not in first_attempts]
        if missing:
            raise InputError(f"no first attempt given for problem '{missing[0]}' ({len(missing)} missing)")
    units = plan(problems, config.samples)
    chunks = [units[i:i + config.chunk_size] for i in range(0, len(units), config.chunk_size)]
    todo = [chunk for chunk in chunks if any((p.id, k) not in skip for p, k in chunk)]
    generated_turns = config.turns - (first_attempts is not None)
    with phase(progress, "rollout: attempts", sum(len(c) for c in todo) * generated_turns) as step, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="grader") as grader:
        waiting: Future | None = None
        for chunk in todo:  # a partly done chunk is regenerated whole, so its batches match the original run
            generated = _generate(task, chunk, backend, config, first_attempts, step)
            future = grader.submit(_grade_new, task, chunk, generated, skip, on_graded)
            if waiting is not None:
                yield waiting.result()
            waiting = future
        if waiting is not None:
            yield waiting.result()


def _grade_new(task: Task, chunk: list[tuple[Problem, int]], conversations: list["_Conversation"],
               skip: Collection[tuple[str, int]], on_graded: Callable[[list[Trace]], None] | None) -> list[Trace]:
    traces = [t for t in _grade(task, chunk, conversations) if (t.problem.id, t.sample) not in skip]
    if on_graded is not None:
        on_graded(traces)
    return traces


@dataclass
class _Conversation:
    messages: list[Message]
    texts: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    given: list[bool] = field(default_factory=list)
    token_ids: list[tuple[int, ...]] = field(default_factory=list)


def _generate(task: Task, chunk: list[tuple[Problem, int]], backend: Backend, config: RolloutConfig,
              first_attempts: Mapping[str, str] | None, step: Callable[[int, str], None]) -> list[_Conversation]:
    conversations = [_Conversation(list(task.first_prompt(problem))) for problem, _ in chunk]
    for turn in range(config.turns):
        if turn > 0:
            for conversation in conversations:
                conversation.messages.append({"role": "user", "content": task.correction_instruction})
        if turn == 0 and first_attempts is not None:
            for (problem, _), conversation in zip(chunk, conversations):
                _append(conversation, first_attempts[problem.id], 0, (), given=True)
            continue
        by_seed: dict[int, list[int]] = {}
        for index, (_, sample) in enumerate(chunk):  # greedy needs no seed: one call for the whole chunk
            key = _seed(config.params.seed, sample, turn) if config.params.temperature > 0 else config.params.seed
            by_seed.setdefault(key, []).append(index)
        for seed, indices in by_seed.items():
            params = replace(config.params, seed=seed)
            started = time.perf_counter()
            completions = backend.generate([conversations[i].messages for i in indices], params)
            rate = sum(c.n_tokens for c in completions) / max(time.perf_counter() - started, 1e-9)
            step(len(indices), f"rollout: attempt {turn + 1}, {rate:,.0f} tokens/s")
            for i, completion in zip(indices, completions):
                _append(conversations[i], completion.text, completion.n_tokens, completion.token_ids, given=False)
    return conversations


def _append(conversation: _Conversation, text: str, n_tokens: int, token_ids: tuple[int, ...], *,
            given: bool) -> None:
    conversation.messages.append({"role": "assistant", "content": text})
    conversation.texts.append(text)
    conversation.tokens.append(n_tokens)
    conversation.token_ids.append(tuple(token_ids))
    conversation.given.append(given)


def _seed(seed: int, sample: int, turn: int) -> int:
    """Distinct, stable seeds per (sample, turn): sample k draws the same numbers in any run or resume."""
    digest = hashlib.sha256(f"{seed}/{sample}/{turn}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _grade(task: Task, chunk: list[tuple[Problem, int]], conversations: list[_Conversation]) -> list[Trace]:
    """Extract and verify every attempt of the chunk in one grading call (harness.grading.attempts, the path `grade`
    takes too): a failure to grade is a verdict with status error, never a crashed run."""
    pairs = [(problem, text) for (problem, _), conversation in zip(chunk, conversations) for text in conversation.texts]
    grades = iter(grade_attempts(task, pairs))
    traces = []
    for (problem, sample), conversation in zip(chunk, conversations):
        attempts = tuple(Attempt(text, grade.verdict.extracted, grade.verdict, n_tokens, given, token_ids,
                                 grade.flexible_verdict)
                         for text, n_tokens, given, token_ids, grade
                         in zip(conversation.texts, conversation.tokens, conversation.given, conversation.token_ids,
                                grades))
        traces.append(Trace(problem, sample, tuple(conversation.messages), attempts))
    return traces
