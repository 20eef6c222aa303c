"""User overrides of a task's prompts. Prompts are task data: a user may swap them, and whatever was used is
what results record (read them back from the wrapped task, never from the flags)."""

from __future__ import annotations

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Message, Problem

QUESTION_SLOT = "{question}"


class PromptOverride(Task):
    """A task with its correction instruction and/or attempt-1 prompt replaced; everything else delegated.

    `first_prompt_template` is one user message with "{question}" where the problem goes (plain replacement,
    so LaTeX braces elsewhere in the template need no escaping); `system_prompt` is optional.
    """

    def __init__(self, task: Task, correction_instruction: str | None = None,
                 first_prompt_template: str | None = None, system_prompt: str | None = None):
        if first_prompt_template is not None and QUESTION_SLOT not in first_prompt_template:
            raise InputError(f"first-prompt template must contain {QUESTION_SLOT}: {first_prompt_template[:60]!r}")
        if correction_instruction is not None and not correction_instruction.strip():
            raise InputError("correction instruction is empty")
        self._task = task
        self._template = first_prompt_template
        self._system = system_prompt
        self.correction_instruction = correction_instruction or task.correction_instruction
        self.name, self.splits = task.name, task.splits

    @property
    def verifier(self):
        return self._task.verifier

    def problems(self, split: str) -> list[Problem]:
        return self._task.problems(split)

    def extract(self, problem: Problem, response: str) -> str | None:
        return self._task.extract(problem, response)

    def extract_flexible(self, problem: Problem, response: str) -> str | None:
        return self._task.extract_flexible(problem, response)

    def first_prompt(self, problem: Problem) -> list[Message]:
        if self._template is None:
            messages = self._task.first_prompt(problem)
            if self._system is None:
                return messages
            return [{"role": "system", "content": self._system}] + [m for m in messages if m["role"] != "system"]
        messages = [{"role": "system", "content": self._system}] if self._system else []
        return messages + [{"role": "user", "content": self._template.replace(QUESTION_SLOT, problem.question)}]


def prompts_used(task: Task, problem: Problem) -> dict:
    """What a results file records about prompts: attempt 1 for an example problem, and the instruction."""
    return {"first_prompt_example": task.first_prompt(problem), "correction_instruction": task.correction_instruction}
