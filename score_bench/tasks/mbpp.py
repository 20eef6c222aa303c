"""mbpp: write a Python function from a one-line description; graded by running its hidden tests.

Dataset: MBPP, "Mostly Basic Python Problems" (Austin et al. 2021, "Program Synthesis with Large Language
Models", arXiv 2108.07732), CC-BY-4.0: the full 974-row set or the 427-row hand-verified sanitized subset
(the `variant` option). Ids are the task_id as a string ("11"); splits are the standard ones by task_id:
prompt 1-10, test 11-510, validation 511-600, train 601-974. The SCoRe paper (Kumar et al. 2024) trains on
MBPP and evaluates repair on MBPP-R, the base model's wrong MBPP answers (see `score-bench repair-set`).

Data comes from <data dir>/mbpp/mbpp.jsonl or sanitized-mbpp.json (the `data_dir` option, else
SCORE_BENCH_DATA_DIR); with neither, from the Hugging Face hub (google-research-datasets/mbpp).

Prompt: the problem text, the signature of the function the tests call, and the first test as an example.
The other tests stay hidden (as EvalPlus does), so a program that hard-codes the shown example fails.

Grading: harness.grading.verifiers.code.CodeVerifier, so test code never enters the program's sandbox: every assert
runs in the checker, where the function is a proxy. A few rows call the program with values that cannot cross
the sandbox boundary as plain data: objects the program itself must define (a `Node` tree built by
test_setup_code in 367 and 927, `Pair(...)` arguments in 601) or builtin types as arguments (533). For them,
and for functions named `check` (which would collide with the checker's `check(candidate)` convention), the
program's sandbox gets a trusted suffix: test_setup_code and one zero-argument "case" per call expression,
inputs only; the checker calls the cases through the proxy and holds the asserts and expected values as for
every other row. Every program also gets PLAIN_RESULTS appended (see there). Timeout 20 s per problem: the
reference of 123 needs 5 s on a loaded 2-core machine.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Sequence

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.protocols import Task, Verifier
from score_bench.harness.contracts.types import Message, Problem, Verdict, check_unique
from score_bench.harness.grading.sandbox import Limits
from score_bench.harness.grading.verifiers.code import CodeVerifier, CodeVerifierConfig
from score_bench.harness.grading.verifiers.per_test_outcomes import same_per_test_outcomes
from score_bench.harness.runtime import settings
from score_bench.harness.runtime.input_files import read_jsonl_objects, read_text
from score_bench.tasks._code_extraction import parse_quietly, strict_code

CORRECTION_INSTRUCTION = (
    "# There might be an error in the code above because of lack of understanding of the question. "
    "Please correct the error, if any, and rewrite the solution. Only output the final correct Python program!"
)
"""The SCoRe paper's code correction instruction, verbatim."""
FIRST_INSTRUCTION = "Output the whole program, with any imports it needs, in one ```python code block."

VARIANTS = {"full": "mbpp.jsonl", "sanitized": "sanitized-mbpp.json"}
"""Local file per variant, under <data dir>/mbpp/."""
HUB_ID = "google-research-datasets/mbpp"
SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}
"""Inclusive task_id ranges of the standard splits (upstream README, and the hub dataset's splits)."""
CASE_FUNCTION = "__mbpp_case__"
"""Entry point of rows whose calls need program-defined objects: the checker calls it with a case index."""

_DEFINITION_LINE = re.compile(r"(?:@|(?:async[ \t]+)?def[ \t]|class[ \t]|import[ \t]|from[ \t])")


PLAIN_RESULTS = """
def _mbpp_plain(value):
    import collections, re
    if isinstance(value, (collections.Counter, collections.OrderedDict, collections.defaultdict)):
        return {_mbpp_plain(k): _mbpp_plain(v) for k, v in dict.items(value)}
    if isinstance(value, collections.deque):
        return [_mbpp_plain(v) for v in value]
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        return tuple(_mbpp_plain(v) for v in tuple.__iter__(value))
    if isinstance(value, re.Match):
        return True
    if type(value) in (list, tuple, set, frozenset):
        return type(value)(_mbpp_plain(v) for v in value)
    if type(value) is dict:
        return {_mbpp_plain(k): _mbpp_plain(v) for k, v in value.items()}
    return value


def _mbpp_outermost(function):
    depth = [0]

    def call(*args, **kwargs):
        depth[0] += 1
        try:
            result = function(*args, **kwargs)
        finally:
            depth[0] -= 1
        return _mbpp_plain(result) if depth[0] == 0 else result
    return call
"""
"""Trusted code appended to every program: results of stdlib types that MBPP's tests compare as plain values
(a Counter equals a dict, a regex match is truthy) become those values before they cross the boundary, since
the sandbox codec carries plain data only. It cannot help a wrong program: whatever runs in the program's
sandbox can send any plain value anyway, and the checker compares only plain values."""


class MbppTask(Task):
    """Implements harness.contracts.protocols.Task over MBPP (full or sanitized)."""

    name = "mbpp"
    splits = tuple(SPLITS)

    def __init__(self, *, variant: str = "full", data_dir: str | Path | None = None, unsafe: bool = False,
                 timeout: float = 20.0, workers: int | None = None, challenge_tests: bool = True,
                 correction_instruction: str = CORRECTION_INSTRUCTION):
        if variant not in VARIANTS:
            raise InputError(f"unknown MBPP variant '{variant}'; use one of: {', '.join(VARIANTS)}")
        if timeout <= 0:
            raise InputError(f"timeout must be positive, got {timeout}")
        self.variant = variant
        self.data_dir = Path(data_dir) if data_dir is not None else settings.data_dir()
        self.challenge_tests = challenge_tests
        self.correction_instruction = correction_instruction
        limits = Limits(wall_seconds=timeout, cpu_seconds=max(1, int(timeout + 0.999)))
        self._verifier = MbppVerifier(CodeVerifier(CodeVerifierConfig(limits=limits, workers=workers,
                                                                      unsafe=unsafe)))

    @property
    def verifier(self) -> "MbppVerifier":
        return self._verifier

    @cached_property
    def _problems(self) -> list[Problem]:
        rows = self._read_local() if self.data_dir is not None else _load_hub(self.variant)
        problems = [_problem(row, where, self.variant, self.challenge_tests) for where, row in rows]
        check_unique((p.id, where) for p, (where, _) in zip(problems, rows))
        return sorted(problems, key=lambda p: int(p.id))

    def _read_local(self) -> list[tuple[str, dict]]:
        path = self.data_dir / "mbpp" / VARIANTS[self.variant]
        if self.variant == "full":
            return [(f"{path}:{n}", row) for n, row in read_jsonl_objects(path, "MBPP data file")]
        try:
            rows = json.loads(read_text(path, "MBPP data file"))
        except ValueError as err:
            raise InputError(f"MBPP data file '{path}' is not valid JSON: {err}") from None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise InputError(f"MBPP data file '{path}' must hold a JSON array of objects")
        return [(f"{path}[{i}]", row) for i, row in enumerate(rows)]

    def problems(self, split: str = "test") -> list[Problem]:
        if split not in SPLITS:
            raise InputError(f"unknown split '{split}' for task mbpp; available: {', '.join(self.splits)}")
        low, high = SPLITS[split]
        return [p for p in self._problems if low <= int(p.id) <= high]

    def first_prompt(self, problem: Problem) -> list[Message]:
        return [{"role": "user", "content": problem.question}]

    def extract(self, problem: Problem, response: str) -> str | None:
        """Strict: a response that is entirely a program, else the program in its ```python blocks (the format
        the prompt asks for): the last block that defines the function the tests call, else the last non-empty
        block; an unterminated fence still counts (tasks._code_extraction.strict_code). None otherwise. The
        code runs as written, example asserts included."""
        code = strict_code(response, lambda block: _defines(block, problem.metadata["function"]))
        return None if code is None else code.strip("\n") + "\n"

    def extract_flexible(self, problem: Problem, response: str) -> str | None:
        """Flexible: the response's top-level imports, functions and classes (fenced or not), without the other
        top-level statements (example asserts, prints, calls), when they define the function the tests call;
        else what strict extraction finds."""
        entry = problem.metadata["function"]
        strict = self.extract(problem, response)
        source = strict if strict is not None and _defines(strict, entry) else response
        lines = [line for line in source.splitlines() if not line.lstrip().startswith("```")]
        kept, keeping = [], False
        for line in lines:
            if line.strip() and line[:1] not in " \t)]}":  # a top-level statement starts here
                keeping = _DEFINITION_LINE.match(line) is not None
            if keeping:
                kept.append(line)
        program = "\n".join(kept).strip("\n") + "\n"
        return program if _defines(program, entry) else strict


class MbppSanitizedTask(MbppTask):
    """The `mbpp-sanitized` entry point: MbppTask(variant="sanitized"), for command lines that name a task."""

    def __init__(self, *, data_dir: str | Path | None = None, unsafe: bool = False, timeout: float = 20.0,
                 workers: int | None = None, correction_instruction: str = CORRECTION_INSTRUCTION):
        super().__init__(variant="sanitized", data_dir=data_dir, unsafe=unsafe, timeout=timeout, workers=workers,
                         correction_instruction=correction_instruction)


class MbppVerifier(Verifier):
    """CodeVerifier, with the trusted case suffix appended to the program of the rows that need one."""

    def __init__(self, code: CodeVerifier):
        self.code = code

    def verify_batch(self, items: Sequence[tuple[Problem, str | None]]) -> list[Verdict]:
        runnable = [(problem, program + "\n\n" + problem.metadata["program_suffix"]
                     if program and program.strip() and problem.metadata.get("program_suffix") else program)
                    for problem, program in items]
        verdicts = self.code.verify_batch(runnable)
        return [replace(verdict, extracted=program) for verdict, (_, program) in zip(verdicts, items)]

    def same_answer_batch(self, items: Sequence[tuple[Problem, str, str]]) -> list[bool]:
        """Whether each (problem, a, b) pass and fail the same hidden tests, each run on its own with the
        row's trusted suffix (harness.grading.verifiers.per_test_outcomes): how majority voting groups programs."""
        return same_per_test_outcomes(self.verify_batch, items)


# ---------------------------------------------------------------- rows -> problems

def _problem(row: dict, where: str, variant: str, challenge_tests: bool) -> Problem:
    text_field = "text" if variant == "full" else "prompt"
    for name, kind in (("task_id", int), (text_field, str), ("code", str), ("test_list", list)):
        if not isinstance(row.get(name), kind) or isinstance(row.get(name), bool):
            raise InputError(f"{where}: MBPP row lacks field {name!r} of type {kind.__name__}")
    code = row["code"].replace("\r\n", "\n")
    tests = [t.replace("\r\n", "\n").strip() for t in row["test_list"]]
    challenge = [t.replace("\r\n", "\n").strip() for t in row.get("challenge_test_list") or []]
    setup = (row.get("test_setup_code") or "").replace("\r\n", "\n").strip()
    imports = "\n".join(row.get("test_imports") or [])
    if not tests:
        raise InputError(f"{where}: MBPP row {row['task_id']} has no tests")
    defined = _defined_names(code, where)
    function = _called_function(tests, defined, where)
    hidden = tests + (challenge if challenge_tests else [])
    # `check` would collide with the checker's `check(candidate)` convention; the others need program objects
    needs_cases = bool(setup) or function == "check" or any(
        _called_names(t) & (defined - {function}) or _passes_types(t) for t in hidden)
    if needs_cases:
        checks, suffix = _as_cases(hidden, defined, setup, imports)
        entry = CASE_FUNCTION
    else:
        checks, entry = "\n".join(hidden), function
        suffix = f"{PLAIN_RESULTS}\nif callable(globals().get({function!r})):\n" \
                 f"    {function} = _mbpp_outermost({function})\n"
    question = _prompt(row[text_field].strip(), _signature(code, function), tests[0], setup)
    return Problem(
        id=str(row["task_id"]), question=question, reference=checks,
        metadata={"entry_point": entry, "function": function, "setup_code": imports + "\n" + _imports_of(code),
                  "program_suffix": suffix, "canonical_solution": code, "example_test": tests[0],
                  "hidden_tests": len(hidden) - 1, "variant": variant})


def _prompt(text: str, signature: str, example: str, setup: str) -> str:
    parts = [text, f"The tests call the function `{signature}`. For example, your code should pass this test:"]
    if setup:
        parts.append(f"```python\n{setup}\n{example}\n```")
    else:
        parts.append(f"```python\n{example}\n```")
    parts.append(FIRST_INSTRUCTION)
    return "\n\n".join(parts)


def _defined_names(code: str, where: str) -> set[str]:
    try:
        tree = parse_quietly(code)
    except SyntaxError as err:
        raise InputError(f"{where}: reference code does not parse: {err.msg} (line {err.lineno})") from None
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                 ast.ClassDef))}


def _called_names(test: str) -> set[str]:
    return {node.func.id for node in ast.walk(parse_quietly(test))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}


def _called_function(tests: list[str], defined: set[str], where: str) -> str:
    """The reference's top-level function the first test calls (the outermost such call)."""
    try:
        tree = parse_quietly(tests[0])
    except SyntaxError as err:
        raise InputError(f"{where}: test does not parse: {err.msg}") from None
    for node in ast.walk(tree):  # breadth first: the outermost call comes first
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in defined:
            return node.func.id
    raise InputError(f"{where}: the first test calls no function the reference code defines")


def _signature(code: str, function: str) -> str:
    for node in parse_quietly(code).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == function:
            return f"{function}({ast.unparse(node.args)})"
    return f"{function}(...)"


def _imports_of(code: str) -> str:
    """The reference's top-level imports: tests of the full set ran in the reference's namespace and some use
    a module it imported (e.g. math.isclose); the checker needs them, the program brings its own."""
    return "\n".join(ast.unparse(node) for node in parse_quietly(code).body
                     if isinstance(node, (ast.Import, ast.ImportFrom)))


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+{re.escape(name)}\b", code, re.MULTILINE) is not None


class _CallsToCases(ast.NodeTransformer):
    """Replaces each outermost call to a program-defined name with `__mbpp_case__(k)`; collects the calls."""

    def __init__(self, defined: set[str]):
        self.defined, self.calls = defined, []

    def visit_Call(self, node: ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id in self.defined:
            self.calls.append(ast.unparse(node))
            return ast.Call(ast.Name(CASE_FUNCTION, ast.Load()), [ast.Constant(len(self.calls) - 1)], [])
        return self.generic_visit(node)


def _as_cases(tests: list[str], defined: set[str], setup: str, imports: str) -> tuple[str, str]:
    """(checker test code, program suffix): the asserts with calls replaced by case calls; the setup code and
    one lambda per call for the program's side."""
    rewriter = _CallsToCases(defined)
    checks = "\n".join(ast.unparse(rewriter.visit(parse_quietly(test))) for test in tests)
    cases = ",\n    ".join(f"lambda: {call}" for call in rewriter.calls)
    suffix = (f"{imports}\n{setup}\n{PLAIN_RESULTS}\n_mbpp_cases = (\n    {cases},\n)\n\n"
              f"def {CASE_FUNCTION}(index):\n    return _mbpp_plain(_mbpp_cases[index]())\n")
    return checks, suffix.lstrip("\n")


def _passes_types(test: str) -> bool:
    """Whether a test passes a builtin type as an argument (`remove_datatype(xs, int)`): not plain data."""
    return any(isinstance(arg, ast.Name) and arg.id in _TYPE_NAMES
               for node in ast.walk(parse_quietly(test)) if isinstance(node, ast.Call) for arg in node.args)


_TYPE_NAMES = {"int", "float", "str", "bool", "list", "tuple", "dict", "set", "frozenset", "bytes", "complex"}


def _load_hub(variant: str) -> list[tuple[str, dict]]:
    """All four hub splits, for users with no local copy (the hub is not reachable on every machine)."""
    from datasets import load_dataset

    try:
        data = load_dataset(HUB_ID, variant)
    except Exception as err:
        raise InputError(
            f"could not load {HUB_ID} ({variant}) from the Hugging Face hub: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''} — pass data_dir or set SCORE_BENCH_DATA_DIR"
        ) from None
    return [(f"{HUB_ID}[{split}][{i}]", dict(row)) for split in data for i, row in enumerate(data[split])]
