"""Symbolic equivalence of extracted answers to reference answers, with math-verify, in killable workers.

Why workers: sympy can run for hours or eat all memory on answers like 5^{5^{5^{5^5}}}, and math-verify's
own timeout uses SIGALRM, which fails off the main thread and cannot interrupt C code. So every comparison
runs in a pebble worker process that is killed (SIGTERM, then SIGKILL) when it exceeds `timeout_s`;
the rest of the batch carries on in the other workers, and pebble starts a replacement.

Verdicts (task-agnostic: the reference is `Problem.reference`, the answer is already extracted; both are
parsed inside \\boxed{...} with math-verify's LaTeX extractor, then compared with `verify`):
- correct / incorrect: math-verify's judgement. A trailing "." and a \\boxed{} around the whole answer
  are dropped first.
- incorrect without parsing: no answer (None); empty; longer than `max_answer_chars` (default 1,000; the
  longest MATH reference is 159); brackets nested deeper than `max_nesting` (default 10; MATH references
  reach 3, while ANTLR's parse time explodes with depth: 20 nested \\frac took over 20 s); unbalanced
  braces or a \\boxed inside the answer (either would let the wrapper grade another part of the text:
  "2 \\boxed{1}" would read as 1).
- incorrect, detail "timed out": grading this answer alone took longer than `timeout_s`. A pathological
  answer is the response's fault, so it is graded wrong, not reported as a grader error.
- error: the grader failed — the reference does not parse, the worker process died (a crash, or killed by
  the OS), or the grading code raised. Counted as not correct by the metrics, and never a crashed run.

No answer text reaches Python's eval: only the ANTLR LaTeX parser sees it, which builds sympy objects
directly. math-verify's plain-expression extractor is not used, because it hands text to sympy's
parse_expr, which evaluates it (its regex only admits digits and operators, but it adds nothing once the
answer is boxed). As defence in depth, workers refuse to spawn processes, open sockets or write files (an
audit hook) and cap their address space (`memory_limit_mb`). tests/harness/grading/symbolic_cases.json holds the
hostile strings this is checked with.

Speed: items go to workers in chunks (one round trip per chunk, not per item); a chunk that times out or
loses its worker is re-run item by item, so each item still gets its own full `timeout_s` (a pathological
answer costs at most about twice `timeout_s` of wall time, on one worker). Workers fork from a fork server
that has math-verify imported, and parse in two stages (ANTLR's SLL mode, LL only when SLL fails: same
results, about a third of the CPU; see _symbolic_worker). Each worker caches parsed references, and the
verifier remembers verdicts of (reference, answer) pairs already graded, so an attempt 2 that repeats
attempt 1 costs nothing. bench/bench_math_grading.py measures it against plain serial math-verify.

Like any multiprocessing code, a script that uses this verifier must guard its entry point with
`if __name__ == "__main__":` — each worker imports the main module.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Sequence

from pebble import ProcessExpired, ProcessPool

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.protocols import Verifier
from score_bench.harness.contracts.types import Problem, Status, Verdict

_WORKER_MODULE = "score_bench.harness.grading.verifiers._symbolic_worker"
_TIMED_OUT = "timed out"
_MAX_CHUNK = 16
"""Items per worker round trip. At ~2 ms per MATH answer, 16 items amortise the IPC cost; more would only
lengthen the re-run after a timeout."""


@dataclass(frozen=True)
class SymbolicConfig:
    timeout_s: float = 10.0
    """Hard limit on grading one answer (parse both sides + compare). Typical MATH answers take ~2 ms."""
    workers: int | None = None
    """Worker processes; None = the CPU cores this process may use."""
    max_answer_chars: int = 1000
    """Longer answers are incorrect without parsing (100k characters of 'x' parse for minutes)."""
    max_nesting: int = 10
    """Deeper bracket nesting ((, [, {) is incorrect without parsing (parse time grows exponentially)."""
    memory_limit_mb: int | None = 2048
    """Address space a worker may map beyond what it has after start-up (RLIMIT_AS); None = no cap."""
    gold_cache_size: int = 4096
    """Parsed references kept per worker; 0 disables."""
    memo_size: int = 100_000
    """(reference, answer) verdicts remembered across batches; 0 disables. Timeouts and errors are not
    remembered: they depend on load, not only on the answer."""

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise InputError(f"SymbolicConfig.timeout_s must be positive, got {self.timeout_s}")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"SymbolicConfig.workers must be at least 1, got {self.workers}")
        if self.max_answer_chars < 1 or self.max_nesting < 1:
            raise InputError("SymbolicConfig.max_answer_chars and max_nesting must be at least 1")


def _grade_chunk(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Runs in a worker. Importing the worker module here keeps math-verify out of the parent process."""
    from score_bench.harness.grading.verifiers import _symbolic_worker

    return _symbolic_worker.grade_chunk(pairs)


def _init_worker(memory_limit_mb: int | None, gold_cache_size: int) -> None:
    from score_bench.harness.grading.verifiers import _symbolic_worker

    _symbolic_worker.init_worker(memory_limit_mb, gold_cache_size)


_BOX = re.compile(r"\\(?:boxed|fbox)\b")


def _unbox(text: str) -> str:
    """"\\boxed{X}" -> "X" when the box is the whole answer (its braces enclose everything after it)."""
    match = _BOX.match(text)
    if match and text.endswith("}"):
        inner = text[match.end():].lstrip()
        if inner.startswith("{") and _closing_brace(inner) == len(inner) - 1:
            return inner[1:-1].strip()
    return text


def _closing_brace(text: str) -> int:
    """Index of the brace closing text[0] == "{", or -1. Escaped braces (\\{ \\}) do not count."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "{}" and i and text[i - 1] == "\\":
            continue
        depth += 1 if ch == "{" else -1 if ch == "}" else 0
        if depth == 0:
            return i
    return -1


def _malformed(text: str, max_nesting: int) -> str:
    """Why `text` is not worth parsing, or "". The answer is graded inside \\boxed{...}, so unbalanced
    braces or a \\boxed of its own could make math-verify grade a different part of it ("2}\\boxed{1",
    "2 \\boxed{1}" would both read as 1): those are incorrect outright."""
    if not text:
        return "the answer is empty"
    if _BOX.search(text):
        return "the answer contains a \\boxed or \\fbox of its own"
    depth = deepest = braces = 0
    for i, ch in enumerate(text):
        escaped = i > 0 and text[i - 1] == "\\"
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth = max(0, depth - 1)
        if ch in "{}" and not escaped:
            braces += 1 if ch == "{" else -1
            if braces < 0:
                return "unbalanced braces"
    if braces:
        return "unbalanced braces"
    if deepest > max_nesting:
        return f"brackets nested {deepest} deep, over the {max_nesting} cap"
    return ""


def _mp_context():
    """A fork server with the worker module preloaded: forking from it is fast, and safe however many
    threads the caller runs (torch, pebble's own). Spawn where there is no fork server."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file is not None and not os.path.isfile(main_file) and "fork" in multiprocessing.get_all_start_methods():
        # A script read from stdin ("<stdin>"): fork server and spawn workers would re-run the main module by
        # path, find no file and never start. Plain fork needs no main module; the workers run only sympy.
        return multiprocessing.get_context("fork")
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # Process-wide setting of the stdlib; it only takes effect if the fork server is not running yet,
    # and a server without it is still correct, just slower (workers then import math-verify themselves).
    ctx.set_forkserver_preload([_WORKER_MODULE])
    return ctx


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class SymbolicVerifier(Verifier):
    """`verify_batch` grades (problem, extracted answer) pairs against `problem.reference`.

    The worker pool starts on the first batch and is reused; `close()` (or `with SymbolicVerifier() as v:`)
    stops it. A verifier that is never closed stops its workers when garbage-collected or at exit.
    """

    def __init__(self, config: SymbolicConfig | None = None):
        self.config = config or SymbolicConfig()
        self.workers = self.config.workers or _default_workers()
        self._pool: ProcessPool | None = None
        self._finalizer: weakref.finalize | None = None
        self._memo: OrderedDict[tuple[str, str], Verdict] = OrderedDict()
        self._lock = threading.Lock()  # one batch at a time: the pool and the memo are shared state

    # -- lifecycle -------------------------------------------------------------------------------------
    def _get_pool(self) -> ProcessPool:
        if self._pool is not None and not self._pool.active:  # pebble gave up on it: start afresh
            self.close()
        if self._pool is None:
            self._pool = ProcessPool(
                max_workers=self.workers,
                initializer=_init_worker,
                initargs=(self.config.memory_limit_mb, self.config.gold_cache_size),
                context=_mp_context(),
            )
            self._finalizer = weakref.finalize(self, _stop_pool, self._pool)
        return self._pool

    @property
    def running(self) -> bool:
        """Whether worker processes are up (they start with the first batch that needs parsing)."""
        return self._pool is not None and self._pool.active

    def close(self) -> None:
        """Stop the workers (the fork server stays for the process's lifetime, idle). The verifier can
        still be used: the next batch starts a new pool."""
        if self._finalizer is not None:
            self._finalizer()
        self._pool = self._finalizer = None

    def __enter__(self) -> "SymbolicVerifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- grading ---------------------------------------------------------------------------------------
    def verify_batch(self, items: Sequence[tuple[Problem, str | None]]) -> list[Verdict]:
        """One verdict per (problem, extracted answer), in order. Safe to call from any thread."""
        with self._lock:
            return self._verify(items)

    def same_answer_batch(self, items: Sequence[tuple[Problem, str, str]]) -> list[bool]:
        """Whether each (problem, a, b) are the same answer by math-verify (a graded as the reference, b as the
        answer; the problem plays no part): the grouping that majority voting over samples uses
        (harness.grading.voting)."""
        return [v.correct for v in self.verify_batch([(Problem("vote", "", a), b) for _, a, b in items])]

    def _verify(self, items: Sequence[tuple[Problem, str | None]]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(items)
        pending: dict[tuple[str, str], list[int]] = {}  # identical pairs are graded once
        for i, (problem, answer) in enumerate(items):
            text, early = self._screen(answer)
            if early is not None:
                verdicts[i] = early
                continue
            key = (problem.reference, text)
            if key in self._memo:
                self._memo.move_to_end(key)
                verdicts[i] = self._memo[key]
            else:
                pending.setdefault(key, []).append(i)

        for key, verdict in self._grade(list(pending)).items():
            self._remember(key, verdict)
            for i in pending[key]:
                verdicts[i] = replace(verdict, extracted=items[i][1])
        return verdicts  # type: ignore[return-value]  # every slot is filled above

    def _screen(self, answer: str | None) -> tuple[str, Verdict | None]:
        """The text to grade, or a verdict that needs no parsing (missing, too long, too deeply nested,
        unbalanced braces, a \\boxed hidden inside)."""
        cfg = self.config
        if answer is None:
            return "", Verdict(Status.INCORRECT, None, "no answer was extracted")
        if len(answer) > cfg.max_answer_chars:
            detail = f"answer is {len(answer)} characters, over the {cfg.max_answer_chars} cap; not parsed"
            return "", Verdict(Status.INCORRECT, answer, detail)
        text = _unbox(answer.strip().rstrip(".").strip())  # "5." and "\\boxed{5}" are the answer 5
        problem = _malformed(text, cfg.max_nesting)
        if problem:
            return "", Verdict(Status.INCORRECT, answer, problem + "; not parsed")
        return text, None

    def _grade(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Verdict]:
        if not keys:
            return {}
        size = max(1, min(_MAX_CHUNK, len(keys) // (self.workers * 4)))
        chunks = [keys[i : i + size] for i in range(0, len(keys), size)]
        results: dict[tuple[str, str], Verdict] = {}
        retry: list[tuple[str, str]] = []
        for chunk, outcome in zip(chunks, self._run(chunks)):
            if isinstance(outcome, list):
                results.update((key, Verdict(Status(s), key[1], d)) for key, (s, d) in zip(chunk, outcome))
            elif len(chunk) > 1 and not isinstance(outcome, _PoolBroken):
                retry.extend(chunk)  # which item was at fault is unknown: give each its own time limit
            else:
                results.update((key, self._failure(key, outcome)) for key in chunk)
        for key, outcome in zip(retry, self._run([[key] for key in retry])):
            if isinstance(outcome, list):
                (status, detail), = outcome
                results[key] = Verdict(Status(status), key[1], detail)
            else:
                results[key] = self._failure(key, outcome)
        return results

    def _run(self, chunks: list[list[tuple[str, str]]]) -> list[list[tuple[str, str]] | BaseException]:
        """Each chunk's outcomes, or the exception that stopped it (timeout, dead worker, broken pool)."""
        try:
            pool = self._get_pool()
            futures = [pool.schedule(_grade_chunk, args=(chunk,), timeout=self.config.timeout_s)
                       for chunk in chunks]
        except Exception as exc:  # the pool could not start or broke down: no chunk can run
            self.close()
            return [_PoolBroken(f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}")] * len(chunks)
        outcomes: list[list[tuple[str, str]] | BaseException] = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _failure(self, key: tuple[str, str], exc: BaseException) -> Verdict:
        if isinstance(exc, FutureTimeout):
            return Verdict(Status.INCORRECT, key[1], f"{_TIMED_OUT}: grading took over {self.config.timeout_s:g} s")
        if isinstance(exc, ProcessExpired):
            return Verdict(Status.ERROR, key[1], f"grader process died (exit code {exc.exitcode})")
        if isinstance(exc, _PoolBroken):
            return Verdict(Status.ERROR, key[1], f"grading workers could not run ({exc}); a script that uses "
                                                 "this verifier needs an `if __name__ == \"__main__\":` guard")
        return Verdict(Status.ERROR, key[1], f"grader failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")

    def _remember(self, key: tuple[str, str], verdict: Verdict) -> None:
        """Memoise verdicts that depend only on the pair: not errors, not timeouts (those depend on load)."""
        if self.config.memo_size <= 0 or verdict.status is Status.ERROR or verdict.detail.startswith(_TIMED_OUT):
            return
        self._memo[key] = verdict
        if len(self._memo) > self.config.memo_size:
            self._memo.popitem(last=False)


class _PoolBroken(Exception):
    """The worker pool could not take work at all."""


def _stop_pool(pool: ProcessPool) -> None:
    pool.stop()
    pool.join()
