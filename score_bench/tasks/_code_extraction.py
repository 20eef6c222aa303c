"""Strict extraction of a program from a response, shared by the code tasks (humaneval, mbpp).

Strict takes only what is unambiguously code: the response's ```python blocks (the format the prompts ask for),
or a response that is entirely a program (it compiles as Python: how HumanEval samples made elsewhere look, and
how EvalPlus and lm-evaluation-harness read them). Prose with unfenced code in it is ambiguous, so it is left to
each task's flexible extraction.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import Callable

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def strict_code(response: str, defines: Callable[[str], bool]) -> str | None:
    """The code strict extraction reads: the whole response when it is a program; else, from its ```python
    blocks, the last that `defines` the function under test, else the last non-empty one (an unterminated
    fence still counts); else None."""
    if is_program(response):
        return response.strip()
    blocks = [block for block in _FENCE.findall(response) if block.strip()]
    if not blocks:
        return None
    defining = [block for block in blocks if defines(block)]
    return (defining or blocks)[-1]


def is_program(response: str) -> bool:
    """Whether the stripped response is a Python module that compiles (compiled, never run: so a function body
    on its own, whose `return` stands outside any function, is not one) and does more than state bare
    expressions (a lone word or number such as "Sorry" or "42" compiles, but is no program)."""
    try:
        tree = parse_quietly(response.strip())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(tree, "<response>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # null bytes; nesting past the parser's limit
        return False
    return any(not isinstance(node, ast.Expr) for node in tree.body)


def parse_quietly(source: str) -> ast.Module:
    """ast.parse without the warnings old code raises (invalid escapes such as "\\d" in strings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(source)
