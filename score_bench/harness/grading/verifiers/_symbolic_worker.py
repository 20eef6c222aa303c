"""The half of the symbolic verifier that runs inside grading worker processes, never in the caller.

Importing this module loads math-verify (sympy, the ANTLR LaTeX parser: ~0.4 s). The parent preloads it
into the multiprocessing fork server, so every worker forked from there, including replacements for killed
ones, starts with the imports done. (Warming the parser there as well was measured and dropped: ANTLR's
prediction cache pays off for repeats of the same text, not for typical answers in general.) The parent
process itself never imports it: it schedules `symbolic._grade_chunk`, which imports it lazily.

math-verify's own SIGALRM timeouts are disabled (`parsing_timeout=None`, `timeout_seconds=None`):
they fail off the main thread and cannot interrupt C code; the parent kills a worker that runs too long.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import sys
from functools import lru_cache
from typing import Callable, Sequence

import sympy
from math_verify import LatexExtractionConfig, parse, verify

try:
    from antlr4.atn.PredictionMode import PredictionMode
    from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy
except ImportError:  # pragma: no cover - layout of a future release
    PredictionMode = _Latex2Sympy = None

# LaTeX only. The answer arrives wrapped in \\boxed{}, which the LaTeX extractor always matches, so
# math-verify's plain-expression extractor (ExprExtractionConfig) could only ever fire on text *inside* the
# box (e.g. a "final answer is 5" buried in it), and it hands text to sympy's parse_expr, which uses eval.
# Without it, answer text only meets the ANTLR LaTeX parser, which builds sympy objects without eval.
_EXTRACTION = (LatexExtractionConfig(boxed_match_priority=0),)

# math-verify logs a warning per call about the disabled timeout and on every comparison failure.
logging.getLogger("math_verify").setLevel(logging.CRITICAL)

Outcome = tuple[str, str]
"""(status value, detail) — plain strings, so results cross the process boundary cheaply."""


def fast_parsing() -> bool:
    """Two-stage (SLL, then LL) parsing and direct integer literals in latex2sympy; whether installed."""
    if _Latex2Sympy is None or getattr(_Latex2Sympy, "_score_bench_fast", False):
        return _Latex2Sympy is not None
    if not all(callable(getattr(_Latex2Sympy, n, None)) for n in ("create_parser", "parse", "parse_number")):
        return False
    create_parser, parse_latex, parse_number = (
        _Latex2Sympy.create_parser, _Latex2Sympy.parse, _Latex2Sympy.parse_number
    )

    def create_parser_sll(self, latex_str):
        parser = create_parser(self, latex_str)
        if getattr(self, "_score_bench_sll", False):
            parser._interp.predictionMode = PredictionMode.SLL
        return parser

    def parse_two_stage(self, latex_str):
        previous = getattr(self, "_score_bench_sll", False)
        try:
            self._score_bench_sll = True
            return parse_latex(self, latex_str)
        except Exception:  # a syntax error in SLL may be LL-only syntax: parse again in full
            self._score_bench_sll = False
            return parse_latex(self, latex_str)
        finally:
            self._score_bench_sll = previous

    def parse_integer(self, text):
        digits = text.replace(",", "")
        if digits.isascii() and digits.isdigit():
            try:
                return sympy.Integer(int(digits))  # what sympy.Number(digits) returns, without sympify
            except ValueError:  # more digits than int() converts by default
                pass
        return parse_number(self, text)

    _Latex2Sympy.create_parser, _Latex2Sympy.parse = create_parser_sll, parse_two_stage
    _Latex2Sympy.parse_number = parse_integer
    _Latex2Sympy._score_bench_fast = True
    return True


def _parse(text: str) -> list:
    """Parse an already-extracted answer: wrap it in \\boxed{} so math-verify takes it whole."""
    return parse("\\boxed{" + text + "}", _EXTRACTION, parsing_timeout=None)


_parse_gold: Callable[[str], list] = _parse
"""Replaced per worker by an LRU-cached `_parse` (see `init_worker`): a reference is parsed once per
worker however many samples are graded against it (attempts 1 and 2, many samples per problem)."""


def grade_one(reference: str, answer: str) -> Outcome:
    gold = _parse_gold(reference)
    if not gold:
        return "error", "the reference answer could not be parsed"
    pred = _parse(answer)
    if not pred:
        return "incorrect", "the answer could not be parsed"
    if verify(gold, pred, timeout_seconds=None):
        return "correct", ""
    return "incorrect", "not equivalent to the reference"


# Audit events that grading never needs. The grading path evaluates no answer text as Python (see
# _EXTRACTION; decimal literals still pass through sympify, but only as digits the LaTeX lexer let through),
# so this is defence in depth: if a future math-verify or sympy let text reach eval, the payload still
# could not start processes, touch the network or write files.
_FORBIDDEN_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
    "socket.connect", "socket.bind", "socket.sendto", "os.remove", "os.rmdir", "os.rename",
    "os.truncate", "os.chmod", "os.chown", "os.link", "os.symlink", "shutil.rmtree", "shutil.copyfile",
    "ctypes.dlopen", "os.putenv", "os.unsetenv",
})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_guarded = False
"""True while answers are being graded: the worker's own start-up and shutdown (multiprocessing removes
its temporary directory at exit) are not policed."""


def _audit(event: str, args: tuple) -> None:
    if not _guarded:
        return
    if event in _FORBIDDEN_EVENTS:
        raise PermissionError(f"symbolic grader worker may not {event}")
    if event == "open" and len(args) >= 3:
        mode, flags = args[1], args[2]
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & _WRITE_FLAGS)
        if writes:
            raise PermissionError(f"symbolic grader worker may not write {args[0]!r}")


def forbid_side_effects() -> None:
    """Install the audit hook, active while `grade_chunk` runs. Hooks cannot be removed, so call this only
    in a grading worker."""
    sys.addaudithook(_audit)


def grade_chunk(pairs: Sequence[tuple[str, str]]) -> list[Outcome]:
    global _guarded
    out = []
    _guarded = True
    try:
        for reference, answer in pairs:
            try:
                out.append(grade_one(reference, answer))
            except Exception as exc:  # math-verify catches most; anything left is the grader's failure
                out.append(("error", f"grader raised {type(exc).__name__}: {str(exc)[:200]}"))
    finally:
        _guarded = False
    return out


def _cap_address_space(extra_mb: int) -> None:
    """Let the worker map at most `extra_mb` more than it already has (its imports), so "10^{10^{10}}"
    ends in a MemoryError (caught: incorrect) instead of one worker eating the machine's RAM first."""
    try:
        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = current + extra_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):  # no /proc (not Linux) or a limit we may not set: go without
        pass


def init_worker(memory_limit_mb: int | None, gold_cache_size: int) -> None:
    """pebble initializer, run in each new worker: cap memory, cache gold parses, forbid side effects, and
    die on SIGTERM at once. (pebble's own SIGTERM handler is Python code, which cannot run until a C-level
    big-number computation returns; pebble then waits 3 s before SIGKILL. This worker holds nothing that
    needs cleaning up, and pebble only kills it while it holds the channel lock itself.)"""
    global _parse_gold
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if memory_limit_mb:
        _cap_address_space(memory_limit_mb)
    _parse_gold = lru_cache(maxsize=gold_cache_size)(_parse) if gold_cache_size > 0 else _parse
    forbid_side_effects()


fast_parsing()
