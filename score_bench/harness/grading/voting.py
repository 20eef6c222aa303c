"""Majority voting over extracted answers, grouped by the task's own notion of "the same answer".

Two answers to one problem fall in one group when the task's verifier says so (Verifier.same_answer_batch: whether
each (problem, a, b) are the same answer to that problem; math: math-verify equivalence, so "1/2" and "0.5" vote
together; short answers: equal after normalisation; code: identical per-test outcomes on the problem's tests, see
harness.grading.verifiers.code). A verifier without a rule of its own groups by the stripped text. Groups are formed greedily in
sample order: an answer joins the first earlier group whose first answer is equivalent to it, so the grouping
of a prefix of the samples is the full grouping restricted to that prefix, which lets one set of samples serve
every budget.

The vote is the largest group; a sample with no extracted answer abstains. Ties are broken by TIE_BREAK_RULE,
recorded in scale.json. The voted answer is the group's first answer (its representative: for code, the first
program of the group) and is correct when that answer was graded correct (for code: it passed all the tests).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from score_bench.harness.contracts.protocols import Verifier
from score_bench.harness.contracts.types import Problem

__all__ = ["TIE_BREAK_RULE", "Vote", "group_answers", "majority_vote", "same_answer_pairs"]

TIE_BREAK_RULE = ("among equally large answer groups, random.Random(f'{seed}/{problem_id}/{budget}/{arm}')"
                  ".choice(tied groups in order of first appearance); no answer extracted by any sample = wrong")


@dataclass(frozen=True)
class Vote:
    answer: str | None
    """The voted group's first answer; None when every sample abstained."""
    correct: bool
    votes: int
    """Samples in the voted group."""
    tied: int
    """Groups that shared the top count (1 = a clear majority)."""


def same_answer_pairs(verifier: Verifier, items: Sequence[tuple[Problem, str, str]]) -> list[bool]:
    """Whether each (problem, a, b) are the same answer by the verifier's rule (Verifier.same_answer_batch)."""
    if not items:
        return []
    return [bool(x) for x in verifier.same_answer_batch(list(items))]


def group_answers(problems: Sequence[Problem], answers: Sequence[Sequence[str | None]],
                  verifier: Verifier) -> list[list[int | None]]:
    """For each problem's answers (in sample order), the group index of each answer (None for no answer).
    All problems' comparisons go to the verifier in one batch; an answer is compared as first written, and
    answers equal after stripping are one answer."""
    distinct = []  # per problem: (stripped, the first answer stripping to it), in order of first appearance
    for row in answers:
        first: dict[str, str] = {}
        for a in row:
            if a is not None and a.strip():
                first.setdefault(a.strip(), a)
        distinct.append(list(first.items()))
    items, where = [], []
    for p, (problem, strings) in enumerate(zip(problems, distinct)):
        for i in range(len(strings)):
            for j in range(i):
                items.append((problem, strings[j][1], strings[i][1]))
                where.append((p, j, i))
    same = dict(zip(where, same_answer_pairs(verifier, items)))
    groups_of = []
    for p, (row, strings) in enumerate(zip(answers, distinct)):
        leaders: list[int] = []  # index into `strings` of each group's first answer
        group_of_string = {}
        for i, (text, _) in enumerate(strings):
            group = next((g for g, leader in enumerate(leaders) if same[(p, leader, i)]), None)
            if group is None:
                group = len(leaders)
                leaders.append(i)
            group_of_string[text] = group
        groups_of.append([None if a is None or not a.strip() else group_of_string[a.strip()] for a in row])
    return groups_of


def majority_vote(groups: Sequence[int | None], answers: Sequence[str | None], correct: Sequence[bool], *,
                  seed: int, problem_id: str, budget: int, arm: str) -> Vote:
    """The vote over one problem's samples (a prefix of the groups from group_answers)."""
    counts: dict[int, int] = {}
    first: dict[int, int] = {}
    for index, group in enumerate(groups):
        if group is not None:
            counts[group] = counts.get(group, 0) + 1
            first.setdefault(group, index)
    if not counts:
        return Vote(None, False, 0, 0)
    top = max(counts.values())
    tied = sorted((g for g, c in counts.items() if c == top), key=first.__getitem__)
    chosen = tied[0] if len(tied) == 1 else random.Random(f"{seed}/{problem_id}/{budget}/{arm}").choice(tied)
    leader = first[chosen]
    return Vote(answers[leader].strip(), bool(correct[leader]), top, len(tied))
