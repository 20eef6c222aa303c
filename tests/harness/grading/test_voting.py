"""Majority voting: grouping by the verifier's equivalence, prefixes, abstentions and the seeded tie-break."""

from __future__ import annotations

import random

from score_bench.harness.contracts.protocols import Verifier
from score_bench.harness.contracts.types import Problem
from score_bench.harness.grading.verifiers.key_answer import KeyAnswerVerifier
from score_bench.harness.grading.verifiers.symbolic import SymbolicVerifier
from score_bench.harness.grading.voting import group_answers, majority_vote


PROBLEM = Problem("p", "question", "reference")


def groups_of(answers, verifier):
    """The grouping of one problem's answers."""
    return group_answers([PROBLEM], [answers], verifier)[0]


class NoHook(Verifier):
    """A verifier without same_answer_batch: voting falls back to equal stripped text."""


def test_math_answers_group_by_math_verify_equivalence_not_text():
    with SymbolicVerifier() as verifier:
        groups = groups_of(["\\frac{1}{2}", "0.5", "1/3", " 0.5 ", None, "2/4"], verifier)
    assert groups == [0, 0, 1, 0, None, 0]


def test_without_a_hook_answers_group_by_stripped_text():
    assert groups_of(["0.5", "1/2", " 0.5", ""], NoHook()) == [0, 1, 0, None]


def test_short_answers_group_after_normalisation():
    groups = groups_of(["Paris.", "paris", "Lyon", "PARIS!"], KeyAnswerVerifier())
    assert groups == [0, 0, 1, 0]


def test_prefix_grouping_is_the_full_grouping_restricted():
    answers = ["7", "8", "7", "9", "8", "8", None, "7"]
    full = groups_of(answers, NoHook())
    for n in range(1, len(answers) + 1):
        assert groups_of(answers[:n], NoHook()) == full[:n]


def test_majority_takes_the_largest_group_and_its_first_verdict():
    answers = ["7", "8", "8", "9", "8"]
    groups = groups_of(answers, NoHook())
    vote = majority_vote(groups, answers, [True, False, False, False, False], seed=0, problem_id="p", budget=5,
                         arm="parallel")
    assert (vote.answer, vote.correct, vote.votes, vote.tied) == ("8", False, 3, 1)


def test_no_answer_at_all_is_a_wrong_vote():
    vote = majority_vote([None, None], [None, None], [False, False], seed=0, problem_id="p", budget=2, arm="x")
    assert (vote.answer, vote.correct, vote.votes) == (None, False, 0)


def test_ties_follow_the_recorded_seeded_rule():
    answers = ["a", "b", "c", "b", "a", "c"]
    groups = groups_of(answers, NoHook())
    picks = set()
    for seed in range(20):
        vote = majority_vote(groups, answers, [False] * 6, seed=seed, problem_id="p7", budget=6, arm="parallel")
        expected = random.Random(f"{seed}/p7/6/parallel").choice(["a", "b", "c"])  # groups by first appearance
        assert vote.answer == expected and vote.tied == 3
        picks.add(vote.answer)
    assert len(picks) > 1  # the rule is random across seeds, not "first group wins"


class ModuloReference(Verifier):
    """A hook that needs the problem: answers are the same when equal modulo the problem's reference."""

    def __init__(self):
        self.seen: list[str] = []

    def same_answer_batch(self, items):
        self.seen += [problem.id for problem, _, _ in items]
        return [int(a) % int(problem.reference) == int(b) % int(problem.reference) for problem, a, b in items]


def test_the_hook_gets_each_answers_own_problem_in_one_batch():
    verifier = ModuloReference()
    problems = [Problem("mod2", "q", "2"), Problem("mod5", "q", "5")]
    groups = group_answers(problems, [["1", "3", "4"], ["1", "6", "3", " 6 "]], verifier)
    assert groups == [[0, 0, 1], [0, 0, 1, 0]]  # 3 and 1 agree mod 2, 6 and 1 agree mod 5
    assert verifier.seen == ["mod2"] * 3 + ["mod5"] * 3  # one call; " 6 " is "6", compared once
