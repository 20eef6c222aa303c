"""Grade programs by running tests against them, with the tests and the program in two separate sandboxes.

The test code never enters the program's sandbox. A checker sandbox runs the problem's setup code and tests
(Problem.reference, e.g. HumanEval's `check(candidate)`), where the function under test is a proxy: each call
goes as tagged JSON over a pipe to the program's sandbox, which calls the real function and sends back the
serialised result. The checker rebuilds plain values (never eval or pickle), so an object with a rigged
`__eq__`, patched builtins, a trace hook, an exit hook or a printed "passed" cannot reach the asserts; and
"correct" needs the tests to return normally with every call answered, so exiting early cannot pass either.
The verdict comes from the checker's report on its own pipe, never from the program's exit code or output.

Problem contract (task-agnostic): `reference` holds the test code; `metadata["entry_point"]` names the function;
`metadata["setup_code"]` (optional) is trusted code the tests need (helpers such as HumanEval's `poly`). After
the setup runs, the entry point's name is bound to the proxy; then the tests run, and `check(candidate)` is
called when they define one. What the program does to its arguments stays in its sandbox: the tests' own
objects are never mutated.
"""

from __future__ import annotations

import json
import os
import queue
import selectors
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

from score_bench.harness.contracts.progress import Progress, phase
from score_bench.harness.contracts.protocols import Verifier
from score_bench.harness.contracts.types import Problem, Status, Verdict
from score_bench.harness.grading import sandbox
from score_bench.harness.grading.sandbox import Limits, SandboxError, Zygote
from score_bench.harness.grading.verifiers.per_test_outcomes import same_per_test_outcomes
from score_bench.harness.runtime import settings

DETAIL_CAP = 2000
"""Characters of a verdict's detail: the failing line, the last call, the end of the program's output."""
GRACE_SECONDS = 5.0
"""How long a sandbox may take to clean up after a job before it is killed and replaced."""


@dataclass(frozen=True)
class CodeVerifierConfig:
    limits: Limits = field(default_factory=Limits)
    """Limits on the program's sandbox, per problem."""
    checker_memory_bytes: int = 2 << 30
    """RLIMIT_AS of the checker: decoded results up to Limits.max_message_bytes must fit."""
    workers: int | None = None
    """Problems graded at once (each uses two sandboxes); None means one per CPU core."""
    unsafe: bool = False
    """Allow running code WITHOUT isolation when no sandbox works here (also SCORE_BENCH_UNSAFE_CODE=1)."""


class CodeVerifier(Verifier):
    """Implements harness.contracts.protocols.Verifier for programs graded by test code."""

    def __init__(self, config: CodeVerifierConfig | None = None, *, unsafe: bool = False,
                 progress: Progress | None = None):
        self.config = config or CodeVerifierConfig()
        self.unsafe = unsafe or self.config.unsafe
        self.progress = progress

    def verify_batch(self, items: Sequence[tuple[Problem, str | None]]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(items)
        todo = []
        for index, (problem, program) in enumerate(items):
            if program is None or not program.strip():
                verdicts[index] = Verdict(Status.INCORRECT, program, "no program to run")
            elif not problem.metadata.get("entry_point"):
                verdicts[index] = Verdict(Status.ERROR, program, f"problem {problem.id} names no entry_point")
            else:
                todo.append(index)
        if todo:
            isolated = sandbox.require_isolation(self.unsafe or settings.allow_unsafe_code())
            workers = max(1, min(self.config.workers or os.cpu_count() or 1, len(todo)))
            slots: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
            all_slots = [_Slot(self.config, isolated) for _ in range(workers)]
            for slot in all_slots:
                slots.put(slot)

            def grade(index: int) -> Verdict:
                slot = slots.get()
                try:
                    problem, program = items[index]
                    return slot.grade(problem, program)
                finally:
                    slots.put(slot)

            try:
                with phase(self.progress, "running tests", len(todo)) as step, \
                        ThreadPoolExecutor(max_workers=workers) as pool:
                    for index, verdict in zip(todo, pool.map(grade, todo)):
                        verdicts[index] = verdict
                        step(1)
            finally:
                for slot in all_slots:
                    slot.close()
        return verdicts  # type: ignore[return-value]

    def same_answer_batch(self, items: Sequence[tuple[Problem, str, str]]) -> list[bool]:
        """Whether each (problem, a, b) pass and fail the same tests of the problem, each test run on its own
        (harness.grading.verifiers.per_test_outcomes): the grouping that majority voting uses
        (harness.grading.voting)."""
        return same_per_test_outcomes(self.verify_batch, items)


class _Slot:
    """A program sandbox and a checker sandbox, reused problem after problem by one worker thread."""

    def __init__(self, config: CodeVerifierConfig, isolated: bool):
        limits = config.limits
        checker_limits = Limits(wall_seconds=limits.wall_seconds, cpu_seconds=limits.cpu_seconds,
                                memory_bytes=config.checker_memory_bytes, max_processes=4,
                                max_message_bytes=limits.max_message_bytes, scratch_bytes=1 << 20)
        self.limits = limits
        self.program = Zygote("program", limits, isolated)
        self.checker = Zygote("checker", checker_limits, isolated)

    def close(self) -> None:
        self.program.close()
        self.checker.close()

    def grade(self, problem: Problem, program: str) -> Verdict:
        try:
            starting = [zygote for zygote in (self.program, self.checker) if not zygote.alive]
            for zygote in starting:
                zygote.close()
                zygote.launch()
            for zygote in starting:
                zygote.wait_ready()
            run = _Run(self, problem, program)
            return run.verdict()
        except (SandboxError, OSError) as err:  # e.g. no fds or processes left on the host
            self.close()
            return Verdict(Status.ERROR, program, _cap(f"grading infrastructure failed: {err}"))


class _Run:
    """One problem: wire the two sandboxes together, watch the deadline and the output cap, then judge."""

    def __init__(self, slot: _Slot, problem: Problem, program: str):
        self.slot, self.problem, self.program = slot, problem, program
        self.report: dict | None = None
        self.done: dict[str, dict] = {}
        self.output = bytearray()
        self.output_total = 0
        self.checker_output = bytearray()
        self.timed_out = self.output_exceeded = False
        self._execute()

    def _execute(self) -> None:
        slot, limits = self.slot, self.slot.limits
        call_r, call_w = os.pipe()
        result_r, result_w = os.pipe()
        out_r, out_w = os.pipe()
        report_r, report_w = os.pipe()
        chk_out_r, chk_out_w = os.pipe()
        entry = self.problem.metadata["entry_point"]
        spec = {"setup": self.problem.metadata.get("setup_code", ""), "test": self.problem.reference,
                "entry_point": entry}
        try:
            slot.program.submit({**limits.job_header(), "entry_point": entry},
                                self.program.encode("utf-8", "surrogatepass"), [call_r, result_w, out_w])
            slot.checker.submit({**slot.checker.limits.job_header(), "entry_point": entry},
                                json.dumps(spec).encode("utf-8"), [call_w, result_r, report_w, chk_out_w])
        finally:
            for fd in (call_r, call_w, result_r, result_w, out_w, report_w, chk_out_w):
                os.close(fd)
        try:
            report = self._watch(out_r, report_r, chk_out_r)
            if self.report is None:  # both sandboxes may report done before the report pipe is read
                self._take_report(bytes(report) + _drain(report_r))
        finally:
            for fd in (out_r, report_r, chk_out_r):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _watch(self, out_r: int, report_r: int, chk_out_r: int) -> bytearray:
        """Multiplex pipes and sandbox messages until both sandboxes finished the job; the report read so far."""
        slot, limits = self.slot, self.slot.limits
        deadline = time.monotonic() + limits.wall_seconds
        hard_stop = deadline + GRACE_SECONDS
        report = bytearray()
        selector = selectors.DefaultSelector()
        selector.register(out_r, selectors.EVENT_READ, "out")
        selector.register(report_r, selectors.EVENT_READ, "report")
        selector.register(chk_out_r, selectors.EVENT_READ, "checker_out")
        selector.register(slot.program.sock, selectors.EVENT_READ, "program")
        selector.register(slot.checker.sock, selectors.EVENT_READ, "checker")
        stopping = False
        with selector:
            while len(self.done) < 2:
                now = time.monotonic()
                if now >= hard_stop:
                    for name in ("program", "checker"):  # a sandbox that cannot clean up is replaced
                        if name not in self.done:
                            getattr(slot, name).close()
                    return report
                if now >= deadline and not stopping:
                    self.timed_out = self.report is None
                    stopping = True
                    self._stop_all()
                events = selector.select(timeout=max(0.0, (hard_stop if stopping else deadline) - now))
                for key, _ in events:
                    what = key.data
                    if what in ("program", "checker"):
                        for message in getattr(slot, what).messages():
                            if message.get("op") in ("done", "eof"):
                                self.done[what] = message
                                selector.unregister(key.fileobj)
                                if message["op"] == "eof" or not message.get("clean", True):
                                    getattr(slot, what).close()
                                break
                        continue
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        selector.unregister(key.fd)
                        if what == "report":
                            self._take_report(bytes(report))
                            if not stopping:  # the tests are over: stop the program and its leftovers
                                stopping = True
                                self._stop_all()
                        continue
                    if what == "report":
                        report += chunk
                    elif what == "checker_out":
                        self.checker_output = (self.checker_output + chunk)[-1000:]
                    else:
                        self._take_output(chunk, key.fd, selector)
                        if self.output_exceeded and not stopping:
                            stopping = True
                            self._stop_all()
        return report

    def _stop_all(self) -> None:
        for name in ("program", "checker"):
            if name not in self.done:
                getattr(self.slot, name).kill_job()

    def _take_output(self, chunk: bytes, fd: int, selector: selectors.BaseSelector) -> None:
        self.output_total += len(chunk)
        if len(self.output) < 4000:
            self.output += chunk[:4000 - len(self.output)]
        if self.output_total > self.slot.limits.max_output_bytes:
            self.output_exceeded = True
            selector.unregister(fd)

    def _take_report(self, data: bytes) -> None:
        try:
            report = json.loads(data)
        except ValueError:
            return
        if isinstance(report, dict):
            self.report = report

    # ------------------------------------------------------------ judging

    def verdict(self) -> Verdict:
        status, detail = self._judge()
        return Verdict(status, self.program, _cap(detail))

    def _judge(self) -> tuple[Status, str]:
        limits, report = self.slot.limits, self.report
        if self.output_exceeded:
            return Status.INCORRECT, f"output limit exceeded: more than {limits.max_output_bytes} bytes written"
        if self.timed_out:  # whatever the checker said after the program was stopped at the deadline
            last = f" ({report.get('detail')})" if report else ""
            return Status.INCORRECT, (f"timed out: no result within {limits.wall_seconds:g} s{last}"
                                      f"{self._program_exit()}{self._output_tail()}")
        if report is None:
            checker = self.done.get("checker", {})
            return Status.ERROR, (f"the checker ended without a report (exit {checker.get('exit')}): "
                                  f"{self.checker_output.decode('utf-8', 'replace')[-800:]}")
        outcome, detail = report.get("outcome"), str(report.get("detail", ""))
        if outcome == "passed":
            if not report.get("ready") or report.get("calls", 0) == 0:
                return Status.ERROR, f"the tests never called {self.problem.metadata['entry_point']}"
            if report.get("answered") != report.get("calls"):
                return Status.INCORRECT, "the program did not answer every call"
            return Status.CORRECT, detail
        if outcome in ("test_error", "argument"):
            return Status.ERROR, f"the tests could not run: {detail}"
        if outcome == "load_error":
            return Status.INCORRECT, f"the program failed to load:\n{detail}"
        if outcome == "gone":
            return Status.INCORRECT, f"{detail}{self._program_exit()}{self._output_tail()}"
        return Status.INCORRECT, detail  # assertion, exception, protocol

    def _program_exit(self) -> str:
        done = self.done.get("program")
        if not done or done.get("op") != "done":
            return ""
        code = done.get("exit")
        if isinstance(code, int) and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            hint = {"SIGXCPU": " (CPU limit)", "SIGXFSZ": " (file size limit)"}.get(name, "")
            text = f"; program killed by {name}{hint}"
        else:
            text = f"; program exited with code {code}"
        if done.get("stopped"):
            text += f" (stopped by the {done['stopped']})"
        if done.get("strays"):
            text += f"; {done['strays']} leftover process(es) killed"
        return text

    def _output_tail(self) -> str:
        if not self.output:
            return ""
        return "\nprogram output (start):\n" + self.output.decode("utf-8", "replace")[:600]


def _drain(fd: int) -> bytes:
    """What is left in a pipe whose writers are all gone (never blocks: a stray writer just ends the read)."""
    os.set_blocking(fd, False)
    data = bytearray()
    try:
        while chunk := os.read(fd, 1 << 16):
            data += chunk
    except BlockingIOError:
        pass
    return bytes(data)


def _cap(text: str) -> str:
    return text if len(text) <= DETAIL_CAP else text[:DETAIL_CAP - 3] + "..."
