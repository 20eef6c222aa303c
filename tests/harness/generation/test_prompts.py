import pytest

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.generation.prompts import PromptOverride, prompts_used
from score_bench.tasks.score_toy import ScoreToyTask


def test_overrides_replace_prompts_and_keep_everything_else():
    base = ScoreToyTask()
    task = PromptOverride(base, correction_instruction="Try again.",
                          first_prompt_template="Q: {question} \\boxed{}", system_prompt="Be brief.")
    problem = task.problems("test")[0]
    assert task.first_prompt(problem) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": f"Q: {problem.question} \\boxed{{}}"},
    ]
    assert task.correction_instruction == "Try again."
    assert task.extract(problem, "x") == base.extract(problem, "x")
    assert task.verifier is base.verifier and task.name == "score-toy"
    assert prompts_used(task, problem)["correction_instruction"] == "Try again."


def test_system_prompt_alone_replaces_the_task_system_message():
    task = PromptOverride(ScoreToyTask(), system_prompt="New system.")
    messages = task.first_prompt(task.problems("test")[0])
    assert [m["role"] for m in messages] == ["system", "user"] and messages[0]["content"] == "New system."


def test_bad_overrides_are_input_errors():
    with pytest.raises(InputError, match="must contain"):
        PromptOverride(ScoreToyTask(), first_prompt_template="no slot")
    with pytest.raises(InputError, match="empty"):
        PromptOverride(ScoreToyTask(), correction_instruction="  ")
