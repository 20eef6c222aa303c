"""The symbolic verifier: the case table (equivalent, different, hostile, pathological), hard kills, crashes,
and that no answer text reaches Python's eval."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.protocols import Verifier
from score_bench.harness.contracts.types import Problem, Status
from score_bench.harness.grading.verifiers.symbolic import SymbolicConfig, SymbolicVerifier

CASES_FILE = Path(__file__).with_name("symbolic_cases.json")
HANG = "9^{9^{9}}"
"""A 370-million-digit integer: sympy computes it in C, where no Python-level timeout reaches."""


def load_cases(sentinel: Path) -> list[dict]:
    cases = json.loads(CASES_FILE.read_text(encoding="utf-8"))
    for case in cases:
        if "answer_parts" in case:
            case["answer"] = "".join(text * times for text, times in case["answer_parts"])
        if case["answer"] is not None:
            case["answer"] = case["answer"].replace("{SENTINEL}", str(sentinel))
    return cases


def problem(reference: str, i: int = 0) -> Problem:
    return Problem(id=f"p{i}", question="?", reference=reference)


@pytest.fixture(scope="module")
def verifier():
    with SymbolicVerifier(SymbolicConfig(timeout_s=2.0)) as v:
        yield v


def test_is_a_verifier():
    assert isinstance(SymbolicVerifier(), Verifier)


@pytest.mark.timeout(300)
def test_case_table(verifier, tmp_path):
    sentinel = tmp_path / "pwned"
    cases = load_cases(sentinel)
    assert {c["kind"] for c in cases} == {"equivalent", "different", "hostile", "pathological"}
    verdicts = verifier.verify_batch([(problem(c["reference"], i), c["answer"]) for i, c in enumerate(cases)])
    wrong = [(c["kind"], c["reference"], (c["answer"] or "")[:60], v.status.value, v.detail)
             for c, v in zip(cases, verdicts) if v.status.value != c["expected"]]
    assert not wrong, "\n".join(map(str, wrong))
    assert [v.extracted for v in verdicts] == [c["answer"] for c in cases]  # as given, not as screened
    assert not sentinel.exists(), "a hostile answer was executed"


@pytest.mark.timeout(120)
def test_a_hang_is_killed_and_the_rest_of_the_batch_is_graded():
    with SymbolicVerifier(SymbolicConfig(timeout_s=1.5, workers=1)) as v:
        verdicts = v.verify_batch([(problem("1"), HANG), (problem("2"), "2"), (problem("1/2"), "0.5")])
        assert [x.status for x in verdicts] == [Status.INCORRECT, Status.CORRECT, Status.CORRECT]
        assert verdicts[0].detail.startswith("timed out")
        # one worker, killed once: its replacement graded the rest, and still serves the next batch
        assert v.verify_batch([(problem("3"), "3")])[0].correct


@pytest.mark.timeout(120)
def test_a_hang_inside_a_chunk_does_not_sink_its_neighbours():
    items = [(problem(str(i), i), str(i)) for i in range(40)]
    items[17] = (problem("1", 17), HANG)
    with SymbolicVerifier(SymbolicConfig(timeout_s=1.5, workers=1)) as v:  # 40 items -> chunks of 10
        verdicts = v.verify_batch(items)
    assert [i for i, x in enumerate(verdicts) if not x.correct] == [17]
    assert verdicts[17].detail.startswith("timed out")


def _workers_of(pid: int) -> list[int]:
    """Grandchildren of `pid` under a multiprocessing fork server: the grading workers."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    servers = {p for p, parent in parents.items() if parent == pid and
               b"forkserver" in Path(f"/proc/{p}/cmdline").read_bytes()}
    return [p for p, parent in parents.items() if parent in servers]


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds worker processes through /proc")
@pytest.mark.timeout(120)
def test_a_worker_that_dies_gives_an_error_verdict_not_a_crash():
    with SymbolicVerifier(SymbolicConfig(timeout_s=60, workers=1)) as v:
        v.verify_batch([(problem("1"), "1")])  # pool up
        killed = []

        def kill_soon():
            time.sleep(1.0)
            for pid in _workers_of(os.getpid()):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        thread = threading.Thread(target=kill_soon)
        thread.start()
        verdict, = v.verify_batch([(problem("1"), HANG)])
        thread.join()
        assert killed
        assert verdict.status is Status.ERROR and "died" in verdict.detail
        assert v.verify_batch([(problem("4"), "4")])[0].correct  # the pool recovered


def test_screened_answers_never_start_the_pool():
    v = SymbolicVerifier(SymbolicConfig(max_answer_chars=20))
    verdicts = v.verify_batch([(problem("1"), None), (problem("1"), "1" * 21), (problem("1"), "2 \\boxed{1}"),
                               (problem("1"), "")])
    assert all(x.status is Status.INCORRECT for x in verdicts)
    assert "over the 20 cap" in verdicts[1].detail
    assert not v.running
    assert v.verify_batch([]) == []


def test_pool_is_reused_memo_answers_repeats_and_close_is_reversible():
    with SymbolicVerifier(SymbolicConfig(workers=1)) as v:
        first = v.verify_batch([(problem("\\frac{1}{2}"), "0.5"), (problem("\\frac{1}{2}"), "0.5")])
        assert v.running and [x.correct for x in first] == [True, True]
        v.close()
        assert not v.running
        again = v.verify_batch([(problem("\\frac{1}{2}"), "0.5")])  # from the memo: no pool needed
        assert again[0].correct and not v.running
        assert v.verify_batch([(problem("3"), "4")])[0].status is Status.INCORRECT  # new pool on demand
        assert v.running
    assert not v.running


def test_config_is_checked():
    with pytest.raises(InputError, match="timeout_s"):
        SymbolicConfig(timeout_s=0)
    with pytest.raises(InputError, match="workers"):
        SymbolicConfig(workers=0)


_SPY = textwrap.dedent("""
    import json, re, sys
    import sympy.parsing.sympy_parser as sympy_parser
    from score_bench.harness.grading.verifiers import _symbolic_worker as worker

    seen = []
    original = sympy_parser.parse_expr
    def spy(text, *args, **kwargs):
        seen.append(text)
        return original(text, *args, **kwargs)
    sympy_parser.parse_expr = spy

    cases = json.load(sys.stdin)
    worker.grade_chunk([(c["reference"], c["answer"]) for c in cases])
    print(json.dumps(sorted(set(seen))))
""")


@pytest.mark.timeout(120)
def test_no_answer_text_reaches_eval(tmp_path):
    """sympy's parse_expr evaluates its input. Grading every table case (bar the slow ones), the only strings
    that reach it are number literals and sympy's own unit names: never anything that can call."""
    cases = [c for c in load_cases(tmp_path / "pwned") if c["kind"] != "pathological" and c["answer"]]
    done = subprocess.run([sys.executable, "-c", _SPY], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=100)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    suspicious = [s for s in seen if not re.fullmatch(r"[0-9.,]+|[A-Za-z]+", s)]
    assert not suspicious
    assert not {"exec", "eval", "open", "system", "import", "getattr"} & set(seen)


_HOOKED = textwrap.dedent("""
    import os, sys
    from score_bench.harness.grading.verifiers import _symbolic_worker as worker
    worker.init_worker(None, 0)
    worker._guarded = True
    for attempt in (lambda: os.system("true"), lambda: open(sys.argv[1], "w"),
                    lambda: __import__("subprocess").run(["true"])):
        try:
            attempt()
        except PermissionError:
            print("blocked")
        else:
            print("allowed")
    print("read" if open(worker.__file__).read() else "")
""")


def test_workers_refuse_processes_and_file_writes(tmp_path):
    target = tmp_path / "written"
    done = subprocess.run([sys.executable, "-c", _HOOKED, str(target)], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["blocked", "blocked", "blocked", "read"], done.stderr[-2000:]
    assert not target.exists()


def test_a_script_piped_on_stdin_can_grade(tmp_path):
    """`python - <<EOF` has a main module with no file behind it; workers must not try to re-run it."""
    import subprocess
    import sys

    script = (
        "from score_bench.harness.contracts.types import Problem\n"
        "from score_bench.harness.grading.verifiers.symbolic import SymbolicVerifier\n"
        "with SymbolicVerifier() as v:\n"
        "    out = v.verify_batch([(Problem('a', 'q', '4'), '4'), (Problem('b', 'q', '4'), '5')])\n"
        "print([x.status.value for x in out])\n"
    )
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['correct', 'incorrect']"
