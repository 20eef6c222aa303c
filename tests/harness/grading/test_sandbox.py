"""The sandbox and the code verifier.

- hostile/: 33 escape attempts and reward hacks (cases.json says what each must come to); all graded in one
  batch with honest controls between them, then their effects are checked on the host: no connection reached
  the test's loopback server, no file appeared outside scratch, no secret leaked, no process survived, and the
  grading process is alive and still grading correctly.
- the boundary's value semantics (mutation, generators, big ints, nan, exceptions, kwargs, ...);
- the codec that carries values across, and SandboxUnavailable when bubblewrap is missing.
Hostile code only ever runs inside a working sandbox: without one those tests skip.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import socket
import threading
from pathlib import Path

import psutil
import pytest

from score_bench.harness.contracts.errors import SandboxUnavailable
from score_bench.harness.contracts.types import Problem, Status
from score_bench.harness.grading import sandbox
from score_bench.harness.grading._sandbox_codec import ProtocolError, Unserialisable, decode, dumps, encode
from score_bench.harness.grading.sandbox import Limits
from score_bench.harness.grading.verifiers.code import CodeVerifier, CodeVerifierConfig, _Slot

HOSTILE = Path(__file__).parent / "hostile"
REPO = Path(__file__).resolve().parents[3]
CASES = json.loads((HOSTILE / "cases.json").read_text())["cases"]
FAST = CodeVerifierConfig(limits=Limits(wall_seconds=4.0, cpu_seconds=4, memory_bytes=256 << 20), workers=2)

needs_sandbox = pytest.mark.skipif(sandbox.probe() is not None, reason=f"no working sandbox: {sandbox.probe()}")

SUM_OF_SQUARES = Problem(
    id="hostile/sum-of-squares",
    question="def solve(xs):\n    \"\"\"The sum of the squares of xs.\"\"\"\n",
    reference=("def check(candidate):\n"
               "    assert candidate([1, 2, 3]) == 14\n"
               "    assert candidate([]) == 0\n"
               "    assert candidate([-4, 5]) == 41\n"
               "    assert candidate(list(range(10))) == 285\n"),
    metadata={"entry_point": "solve", "setup_code": "def solve(xs):\n    \"\"\"The sum of the squares of xs.\"\"\"\n"},
)
HONEST = "def solve(xs):\n    return sum(x * x for x in xs)\n"
HONEST_CHATTY = "import sys\n\ndef solve(xs):\n    print('computing', xs)\n    print('warn', file=sys.stderr)\n" \
                "    return sum(x * x for x in xs)\n"


def survivors(token: str, sleep_marker: str) -> list[str]:
    """Processes on the host that a hostile program started (they rename themselves or sleep a marked time)."""
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        name, cmdline = proc.info["name"] or "", " ".join(proc.info["cmdline"] or [])
        if token in name or sleep_marker in cmdline:
            found.append(f"{proc.info['pid']} {name} {cmdline[:80]}")
    return found


class LoopbackListener:
    """A TCP and a UDP socket on the host's 127.0.0.1 that count whatever reaches them."""

    def __init__(self):
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen()
        self.tcp.settimeout(0.2)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.udp.setblocking(False)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
                self.connections += 1
                conn.close()
            except OSError:
                pass

    def close(self) -> int:
        """Stop; the number of TCP connections and UDP datagrams received."""
        self._stop.set()
        self._thread.join()
        datagrams = 0
        while True:
            try:
                self.udp.recv(1024)
                datagrams += 1
            except BlockingIOError:
                break
        self.tcp.close()
        self.udp.close()
        return self.connections + datagrams


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """Grade every hostile program once, in one batch with honest controls, and record what reached the host."""
    token = "sbx" + secrets.token_hex(4)
    sleep_marker = f"{secrets.randbelow(10**6) + 10**6}.{secrets.randbelow(900) + 100}"
    outside = tmp_path_factory.mktemp("outside")
    home = os.path.expanduser("~")
    before = set(psutil.Process().children(recursive=True))  # e.g. the symbolic verifier's forkserver
    listener = LoopbackListener()
    secret = f"sk-{token}"
    os.environ["SCORE_BENCH_FAKE_SECRET"] = secret
    substitutions = {"@@TOKEN@@": token, "@@PORT@@": str(listener.port), "@@OUTSIDE@@": str(outside),
                     "@@HOME@@": home, "@@REPO@@": str(REPO), "@@SLEEP@@": sleep_marker}
    items = []
    for case in CASES:
        source = (HOSTILE / case["file"]).read_text()
        for placeholder, value in substitutions.items():
            source = source.replace(placeholder, value)
        items += [(SUM_OF_SQUARES, source), (SUM_OF_SQUARES, HONEST if len(items) % 4 else HONEST_CHATTY)]
    try:
        verdicts = CodeVerifier(FAST).verify_batch(items)
    finally:
        del os.environ["SCORE_BENCH_FAKE_SECRET"]
        reached = listener.close()
    escape_paths = [outside / "escaped.txt", Path(f"/tmp/escaped-{token}"), REPO / f"escaped-{token}",
                    Path(home) / f"escaped-{token}", Path(f"/escaped-{token}"), Path(f"/usr/escaped-{token}"),
                    Path(f"/dev/shm/escaped-{token}")]
    return {
        "hostile": {case["file"]: verdicts[2 * i] for i, case in enumerate(CASES)},
        "honest": verdicts[1::2],
        "reached": reached,
        "escaped": [str(p) for p in escape_paths if p.exists()],
        "survivors": survivors(token, sleep_marker),
        "children": [c for c in psutil.Process().children(recursive=True) if c not in before],
        "secret": secret,
    }


@needs_sandbox
@pytest.mark.parametrize("case", CASES, ids=[c["file"][:-3] for c in CASES])
def test_hostile_program_is_contained_or_incorrect(hostile_run, case):
    verdict = hostile_run["hostile"][case["file"]]
    assert verdict.status.value == case["expect"], verdict.detail
    for text in case.get("detail", []):
        assert text in verdict.detail, verdict.detail
    if "returned_at_most" in case:
        returned = re.search(r"returned (\d+)", verdict.detail)
        assert returned and int(returned.group(1)) <= case["returned_at_most"], verdict.detail
    effects = case.get("effects", [])
    if "no_connection" in effects:
        assert hostile_run["reached"] == 0
    if "no_outside_files" in effects:
        assert hostile_run["escaped"] == []
    if "no_secret" in effects:
        assert all(hostile_run["secret"] not in v.detail for v in hostile_run["hostile"].values())
    if "no_survivors" in effects:
        assert hostile_run["survivors"] == []


@needs_sandbox
def test_grading_survives_the_hostile_batch(hostile_run):
    """Honest programs graded between the hostile ones are all correct; nothing is left running."""
    assert [v.status for v in hostile_run["honest"]] == [Status.CORRECT] * len(CASES)
    assert hostile_run["survivors"] == [] and hostile_run["children"] == []
    assert hostile_run["reached"] == 0 and hostile_run["escaped"] == []
    assert len(CASES) >= 25


@needs_sandbox
def test_leftover_processes_die_with_each_job_not_only_at_teardown():
    token = "sbx" + secrets.token_hex(4)
    marker = f"{secrets.randbelow(10**6) + 10**6}.5"
    source = (HOSTILE / "daemon_survives.py").read_text().replace("@@TOKEN@@", token).replace("@@SLEEP@@", marker)
    before = set(psutil.Process().children(recursive=True))  # e.g. the symbolic verifier's forkserver
    slot = _Slot(FAST, isolated=True)
    try:
        verdict = slot.grade(SUM_OF_SQUARES, source)
        assert verdict.status is Status.CORRECT, verdict.detail
        assert "leftover" not in verdict.detail  # strays are reported only for failures; they are gone anyway
        assert survivors(token, marker) == []
        assert slot.program.alive  # the same sandbox grades the next program
        assert slot.grade(SUM_OF_SQUARES, HONEST).correct
    finally:
        slot.close()
    assert [c for c in psutil.Process().children(recursive=True) if c not in before] == []


@needs_sandbox
def test_programs_run_as_nobody_without_capabilities_under_seccomp():
    problem = Problem("identity", "", "def check(candidate):\n    assert candidate() == [65534, 65534, 0, '1', '2']\n",
                      {"entry_point": "who"})
    program = ("import os\n"
               "def who():\n"
               "    status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
               "    return [os.getuid(), os.getgid(), int(status['CapEff'], 16), status['NoNewPrivs'].strip(),\n"
               "            status['Seccomp'].strip()]\n")
    slot = _Slot(FAST, isolated=True)
    try:
        verdict = slot.grade(problem, program)
        zygote = psutil.Process(slot.program.proc.pid).children()[0]
        host_uids = zygote.uids()
    finally:
        slot.close()
    assert verdict.correct, verdict.detail
    assert tuple(host_uids) == (65534, 65534, 65534)  # nobody on the host as well, not root in disguise


# ---------------------------------------------------------------- what crosses the boundary

EDGE_CASES = [
    # (name, test code, program, expected status, detail substring)
    ("mutation stays in the sandbox", "xs = [3, 1, 2]\n    assert candidate(xs) == [1, 2, 3]\n    assert xs == [3, 1, 2]",
     "def f(xs):\n    xs.sort()\n    return xs", Status.CORRECT, ""),
    ("generator consumed by the test", "assert list(candidate(3)) == [0, 1, 2]",
     "def f(n):\n    yield from range(n)", Status.CORRECT, ""),
    ("generator is not a list", "assert candidate(3) == [0, 1, 2]",
     "def f(n):\n    yield from range(n)", Status.INCORRECT, "AssertionError"),
    ("huge int", "assert candidate(7000) == 2 ** 70000 + 1",
     "def f(n):\n    return 2 ** (n * 10) + 1", Status.CORRECT, ""),
    ("nan inf -0.0", "r = candidate()\n    assert math.isnan(r[0]) and r[1] == math.inf and r[2] == -math.inf\n"
     "    assert math.copysign(1, r[3]) == -1", "def f():\n    return [float('nan'), 1e999, -1e999, -0.0]",
     Status.CORRECT, ""),
    ("containers", "assert candidate() == {(1, 2): {3, 4}, 'z': frozenset({1}), 'b': b'\\x00\\xff', 'c': 1 + 2j,\n"
     "        'r': range(3), 't': (1, [2, (3,)]), None: True, 1.5: '\\ud800x'}",
     "def f():\n    return {(1, 2): {3, 4}, 'z': frozenset({1}), 'b': b'\\x00\\xff', 'c': 1 + 2j, 'r': range(3),\n"
     "            't': (1, [2, (3,)]), None: True, 1.5: '\\ud800x'}", Status.CORRECT, ""),
    ("tuple is not a list", "assert candidate() == [1, 2]", "def f():\n    return (1, 2)", Status.INCORRECT, ""),
    ("bool equals int as in Python", "assert candidate() == 1\n    assert candidate() is True",
     "def f():\n    return True", Status.CORRECT, ""),
    ("expected builtin exception", "try:\n        candidate(-1)\n    except ValueError:\n        pass\n"
     "    else:\n        raise AssertionError('no error')", "def f(x):\n    raise ValueError('negative')",
     Status.CORRECT, ""),
    ("subclass of the expected exception", "try:\n        candidate(-1)\n    except ValueError:\n        pass\n"
     "    else:\n        raise AssertionError('no error')",
     "class Negative(ValueError):\n    pass\n\ndef f(x):\n    raise Negative('negative')", Status.CORRECT, ""),
    ("unexpected exception", "assert candidate({}) == 1", "def f(d):\n    return d['missing']",
     Status.INCORRECT, "KeyError"),
    ("keyword arguments", "assert candidate(1, b=2) == 3", "def f(a, b):\n    return a + b", Status.CORRECT, ""),
    ("state between calls", "assert candidate() == 1\n    assert candidate() == 2",
     "n = 0\ndef f():\n    global n\n    n += 1\n    return n", Status.CORRECT, ""),
    ("unserialisable result has no truth value", "assert candidate()",
     "def f():\n    return object()", Status.INCORRECT, "no truth value"),
    ("verbose but correct", "assert candidate() == 1",
     "def f():\n    print('x' * 200_000)\n    return 1", Status.CORRECT, ""),
    ("program does not define the function", "assert candidate() == 1", "def g():\n    return 1",
     Status.INCORRECT, "defines no function"),
    ("program has a syntax error", "assert candidate() == 1", "def f(:\n    return 1",
     Status.INCORRECT, "SyntaxError"),
    ("timeout covers the whole problem", "for _ in range(40):\n        assert candidate() == 1",
     "import time\ndef f():\n    time.sleep(0.25)\n    return 1", Status.INCORRECT, "timed out"),
    ("tests pass something that cannot cross", "assert candidate(lambda: 1) == 1",
     "def f(g):\n    return g()", Status.ERROR, "cannot pass"),
    ("tests never call the function", "pass", "def f():\n    return 1", Status.ERROR, "never called"),
    ("tests are broken", "assert candidate() == (", "def f():\n    return 1", Status.ERROR, "could not run"),
]


def _edge_problem(name: str, test: str) -> Problem:
    return Problem(name, "", f"import math\n\ndef check(candidate):\n    {test}\n", {"entry_point": "f"})


@pytest.fixture(scope="module")
def edge_verdicts():
    items = [(_edge_problem(name, test), program + "\n") for name, test, program, _, _ in EDGE_CASES]
    mbpp_style = Problem("top-level asserts", "", "assert f(2) == 4\nassert f(3) == 9\n", {"entry_point": "f"})
    items += [(mbpp_style, "def f(x):\n    return x * x\n"), (mbpp_style, "def f(x):\n    return x + x\n")]
    return CodeVerifier(FAST).verify_batch(items)


@needs_sandbox
@pytest.mark.parametrize("index", range(len(EDGE_CASES)), ids=[c[0] for c in EDGE_CASES])
def test_edge_case(edge_verdicts, index):
    _, _, _, status, detail = EDGE_CASES[index]
    verdict = edge_verdicts[index]
    assert verdict.status is status, verdict.detail
    assert detail in verdict.detail
    assert len(verdict.detail) <= 2000


@needs_sandbox
def test_tests_without_check_function_run_at_top_level(edge_verdicts):
    assert [v.status for v in edge_verdicts[-2:]] == [Status.CORRECT, Status.INCORRECT]


def test_missing_program_and_missing_entry_point_need_no_sandbox():
    no_entry = Problem("x", "", "assert True", {})
    verdicts = CodeVerifier(FAST).verify_batch([(SUM_OF_SQUARES, None), (SUM_OF_SQUARES, "  \n"), (no_entry, "x=1")])
    assert [v.status for v in verdicts] == [Status.INCORRECT, Status.INCORRECT, Status.ERROR]


# ---------------------------------------------------------------- the codec

@pytest.mark.parametrize("value", [
    None, True, 0, -(2 ** 200), 3 ** 9000, 0.1, -0.0, math.inf, "é\ud800", b"\x00", [1, [2]], (1, (2,)), {1: {2: 3}},
    {(1, "a"): None}, {1, 2}, frozenset({3}), 1 - 2j, range(1, 9, 2), [], (), {}, set(),
])
def test_codec_round_trips_plain_values(value):
    back = decode(json.loads(dumps(encode(value))))
    assert back == value and type(back) is type(value)


def test_codec_nan_and_iterators():
    assert math.isnan(decode(json.loads(dumps(encode(float("nan"))))))
    assert list(decode(json.loads(dumps(encode(iter([1, 2])))))) == [1, 2]


def test_codec_marks_subclasses_and_objects_unserialisable():
    class Liar(int):
        def __eq__(self, other):
            return True

    for value in (Liar(1), object(), [Liar(2)]):
        back = decode(json.loads(dumps(encode(value))))
        assert back != value
        assert not decode(json.loads(dumps(encode(value)))) == back  # two decodings never equal
    with pytest.raises(TypeError):
        bool(Unserialisable("x"))
    with pytest.raises(TypeError):
        encode(Liar(1), strict=True)


@pytest.mark.parametrize("tree", [
    {"X": 1}, {"T": 1}, {"I": "__import__('os')"}, {"F": "1e5"}, {"S": [[1]]}, {"D": [[1]]}, {"a": 1, "b": 2},
    {"R": ["1"]}, {"C": ["a", "b"]},
])
def test_codec_rejects_malformed_values(tree):
    with pytest.raises((ProtocolError, TypeError, ValueError)):
        decode(tree)


# ---------------------------------------------------------------- availability

@pytest.fixture
def no_bwrap(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.probe.cache_clear()
    yield
    sandbox.probe.cache_clear()


def test_missing_bubblewrap_raises_unless_unsafe_is_explicit(no_bwrap, monkeypatch):
    monkeypatch.delenv("SCORE_BENCH_UNSAFE_CODE", raising=False)
    with pytest.raises(SandboxUnavailable, match="bwrap"):
        CodeVerifier(FAST).verify_batch([(SUM_OF_SQUARES, HONEST)])
    assert CodeVerifier(FAST, unsafe=True).verify_batch([(SUM_OF_SQUARES, HONEST)])[0].correct
    monkeypatch.setenv("SCORE_BENCH_UNSAFE_CODE", "1")
    assert CodeVerifier(FAST).verify_batch([(SUM_OF_SQUARES, HONEST + "x = 1\n")])[0].correct


def test_broken_bubblewrap_raises(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: "/bin/false")
    monkeypatch.delenv("SCORE_BENCH_UNSAFE_CODE", raising=False)
    sandbox.probe.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="fails here"):
            sandbox.require_isolation(unsafe=False)
    finally:
        sandbox.probe.cache_clear()
