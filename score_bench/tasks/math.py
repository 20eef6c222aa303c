"""math: competition mathematics, graded by symbolic equivalence of the final answer.

Dataset: MATH (Hendrycks et al. 2021, "Measuring Mathematical Problem Solving With the MATH Dataset",
MIT licence). Test = MATH500, the 500-problem split of Lightman et al. 2023 ("Let's Verify Step by Step",
PRM800K); train = the other 12,000 problems of that split. Rows carry unique_id, problem, solution,
answer, subject, level; ids are unique_id. Paper of the setup: Kumar et al. 2024 (SCoRe), whose appendix
gives the prompts below.

Data comes from a local directory (the `data_dir` option, else SCORE_BENCH_DATA_DIR) laid out as
<dir>/math/math500_test.jsonl and <dir>/math/math_train12k.jsonl; with neither, from the Hugging Face hub.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cached_property
from itertools import groupby
from pathlib import Path

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Message, Problem, check_unique
from score_bench.harness.grading.verifiers.symbolic import SymbolicConfig, SymbolicVerifier
from score_bench.harness.runtime import settings
from score_bench.harness.runtime.input_files import read_jsonl_objects
from score_bench.tasks._placeholders import is_placeholder

_ANSWER_FORM = 'write it in the form "Final Answer: The final answer is $answer$. I hope it is correct."'
SYSTEM_PROMPT = (
    "You are a math expert. When you respond, respond only with the Solution of the final Problem, thinking "
    "step by step. At the end of the Solution, when you give your final answer, " + _ANSWER_FORM
)
"""The SCoRe paper's MATH attempt-1 instruction (zero-shot), verbatim."""
CORRECTION_INSTRUCTION = (
    "There might be an error in the solution above because of lack of understanding of the question. Please "
    "correct the error, if any, and rewrite the solution. Only output the final solution! At the end of the "
    "Solution, when you give your final answer, " + _ANSWER_FORM
)
"""The SCoRe paper's MATH correction instruction, verbatim."""

FILES = {"test": "math500_test.jsonl", "train": "math_train12k.jsonl"}
"""Local file per split, under <data dir>/math/."""
HUB = {"test": ("HuggingFaceH4/MATH-500", "test"), "train": ("zzy1123/MATH_train_test_split", "train")}
"""(hub dataset id, split) per split when no local directory is given. The train id is a public copy of
PRM800K's math_splits/train.jsonl (12,000 rows, the same fields, MIT)."""
_FIELDS = ("unique_id", "problem", "answer")
PLACEHOLDERS = frozenset({"answer", "finalanswer", "youranswer"})
"""The prompts' slot ("$answer$") and its near copies: never an answer."""

# "The final answer is $X$": X runs to the next unescaped $, so "\$18.90" inside stays whole. Models that
# drop the dollars ("The final answer is 5. I hope it is correct.") are read up to the closing phrase.
_FINAL_ANSWER = re.compile(
    r"final answer is\s*(?:\$((?:\\\$|[^$])+)\$|([^$\n]+?)\.?\s*I hope it is correct)", re.IGNORECASE
)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*(\{)?")


class MathTask(Task):
    """Implements harness.contracts.protocols.Task over MATH500 (test) and the MATH 12k train split."""

    name = "math"
    splits = ("test", "train")

    def __init__(self, *, data_dir: str | Path | None = None, system_prompt: str = SYSTEM_PROMPT,
                 correction_instruction: str = CORRECTION_INSTRUCTION,
                 verifier_config: SymbolicConfig | None = None):
        self.data_dir = Path(data_dir) if data_dir is not None else settings.data_dir()
        self.system_prompt = system_prompt
        self.correction_instruction = correction_instruction
        self.verifier_config = verifier_config
        self._cache: dict[str, list[Problem]] = {}

    @cached_property
    def verifier(self) -> SymbolicVerifier:
        return SymbolicVerifier(self.verifier_config)

    # -- problems -----------------------------------------------------------------------------------------
    def problems(self, split: str) -> list[Problem]:
        if split not in self.splits:
            raise InputError(f"unknown split '{split}' for task math; available: {', '.join(self.splits)}")
        if split not in self._cache:
            if self.data_dir is not None:
                rows = _read_jsonl(self.data_dir / "math" / FILES[split])
            else:
                rows = _load_hub(*HUB[split])
            problems = [_problem(row, where) for where, row in rows]
            check_unique((p.id, where) for p, (where, _) in zip(problems, rows))
            self._cache[split] = problems
        return list(self._cache[split])

    # -- prompting and grading ----------------------------------------------------------------------------
    def first_prompt(self, problem: Problem) -> list[Message]:
        """The paper's instruction as the system turn; the problem, labelled as the instruction names it."""
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": f"Problem:\n{problem.question}"},
        ]

    def extract(self, problem: Problem, response: str) -> str | None:
        """Strict: the X of the last "The final answer is $X$" (the form both prompts ask for), else the content
        of the last \\boxed{...} or \\fbox{...} (MATH's own solutions box their answers); None if neither, or
        if X is the prompt's placeholder "answer"."""
        return extract_answer(response)

    def extract_flexible(self, problem: Problem, response: str) -> str | None:
        """Flexible: the last answer-like expression, as math-verify finds it (see extract_last_expression)."""
        return extract_last_expression(response)


def extract_answer(text: str) -> str | None:
    found = _FINAL_ANSWER.findall(text)
    if found:
        answer = "".join(found[-1]).strip()
        if _BOXED.search(answer):  # "The final answer is $\boxed{5}$"
            answer = last_boxed(answer) or answer
        answer = answer.rstrip(".").strip()
        if answer and not is_placeholder(answer, PLACEHOLDERS):
            return answer
    boxed = last_boxed(text)
    return None if boxed is None or is_placeholder(boxed, PLACEHOLDERS) else boxed


def extract_last_expression(text: str) -> str | None:
    """math-verify's own extraction (its LaTeX and plain-expression regexes, priorities and LaTeX
    normalisation, boxed answers first as its MATH setup does): within the best priority that matches, the
    rightmost match. Unlike math_verify.parse, nothing is parsed here: parsing a model's expression can hang
    sympy (5^{5^{5^5}}), and this runs in the grading thread, so the text goes to the verifier's killable
    workers instead. Consequently a match that would not parse is graded incorrect rather than skipped for
    the next one; a placeholder match ("$answer$") is skipped, as it is not an answer."""
    from math_verify.parser import get_extraction_regexes

    patterns = sorted(((pattern, config, priority)
                       for regexes, config in get_extraction_regexes(_flexible_targets())
                       for pattern, priority in regexes), key=lambda item: item[2])
    for _, group in groupby(patterns, key=lambda item: item[2]):
        matches = [(match, config) for pattern, config, _ in group for match in pattern.finditer(text)]
        matches.sort(key=lambda item: (item[0].end(), -item[0].start()), reverse=True)
        for match, config in matches:
            answer = _matched_text(match, config)
            if answer and not is_placeholder(answer, PLACEHOLDERS):
                return answer
    return None


def _flexible_targets():
    """math-verify's extraction targets for MATH answers: LaTeX with \\boxed first, then plain numbers and
    expressions (the configuration its own MATH evaluation uses)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    return (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())


def _matched_text(match: re.Match, config) -> str:
    """The answer text of a math-verify match, as math-verify's extract_latex / extract_expr build it before
    parsing: LaTeX groups normalised (several joined by commas, a set to the verifier), numbers cleaned."""
    from latex2sympy2_extended.latex2sympy2 import normalize_latex
    from math_verify import LatexExtractionConfig

    groups = {name: value for name, value in match.groupdict().items() if value}
    if isinstance(config, LatexExtractionConfig):
        parts = []
        for name, value in groups.items():
            prefix, _, kind = name.partition("_")
            if not kind.startswith("latex") or not (prefix == "first" or prefix.startswith("next")):
                continue
            normalization = config.normalization_config
            if kind == "latexBoxed":
                normalization = replace(normalization, boxed="last")
            parts.append(normalize_latex(value, config=normalization).strip())
        return ", ".join(part for part in parts if part)
    if "expr" in groups:
        return groups["expr"].strip()
    integer = next((v for k, v in groups.items() if k.startswith("integer")), "")
    decimal = next((v for k, v in groups.items() if k.startswith("decimal")), "")
    if not integer and not decimal:
        return ""
    sign = "-" if integer.startswith("-") else ""
    integer = integer.lstrip("-").translate(str.maketrans("", "", ", ")).lstrip("0") or "0"
    return sign + integer + decimal.replace(",", ".")


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} / \\fbox{...} with balanced braces, or of "\\boxed 5" (brace-less,
    up to the next space or $); None when there is none or its braces never close."""
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    if last.group(1) is None:
        word = re.match(r"[^\s$]+", text[last.end():])
        return word.group(0) if word else None
    depth, start = 1, last.end()
    for i in range(start, len(text)):
        if text[i] == "{" and text[i - 1] != "\\":
            depth += 1
        elif text[i] == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[start:i].strip() or None
    return None


def _problem(row: dict, where: str) -> Problem:
    missing = [f for f in _FIELDS if not isinstance(row.get(f), str)]
    if missing:
        raise InputError(f"{where}: MATH row lacks string field(s) {', '.join(missing)}")
    return Problem(
        id=row["unique_id"],
        question=row["problem"],
        reference=row["answer"],
        metadata={"subject": row.get("subject"), "level": row.get("level"), "solution": row.get("solution")},
    )


def _read_jsonl(path: Path) -> list[tuple[str, dict]]:
    return [(f"{path}:{number}", row) for number, row in read_jsonl_objects(path, "MATH data file")]


def _load_hub(dataset_id: str, split: str) -> list[tuple[str, dict]]:
    """Rows from the Hugging Face hub, for users with no local copy (not reachable on machines without it)."""
    from datasets import load_dataset

    try:
        data = load_dataset(dataset_id, split=split)
    except Exception as err:
        raise InputError(
            f"could not load {dataset_id} ({split}) from the Hugging Face hub: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''} — pass data_dir or set SCORE_BENCH_DATA_DIR"
        ) from None
    return [(f"{dataset_id}[{split}][{i}]", dict(row)) for i, row in enumerate(data)]
