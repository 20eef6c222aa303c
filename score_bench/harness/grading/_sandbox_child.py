"""The code that runs inside a sandbox: a warm "zygote" that forks one fresh child per job.

sandbox.py starts this file (its source, via `python -I -S -c`) inside bubblewrap. Starting Python costs more
than grading a HumanEval problem, so each sandbox keeps one interpreter warm and forks a child per job; the
zygote is pid 1 of the sandbox's pid namespace, so after every job `kill(-1, SIGKILL)` reaches every process
the job started (daemons included) and nothing from the program can signal the zygote.

Roles:
- "program": the child execs the untrusted program and answers calls to its entry point over two pipes.
- "checker": the child execs trusted test code (setup + tests) where the function under test is a proxy
  that forwards each call to the program's sandbox as tagged JSON and rebuilds plain values from the answer.
  Only values that equal by value (None/bool/int/float/str/bytes/list/tuple/dict/set/...) ever reach the
  asserts, so nothing the program does inside its own process can rig a comparison.

Stdlib only, no score_bench imports: this runs under `-I -S` with nothing but the standard library.
"""

import builtins
import fcntl
import json
import os
import resource
import select
import signal
import socket
import sys
import time
import traceback

PRELOAD = ("typing", "math", "random", "copy", "string", "collections", "itertools", "functools", "re", "heapq",
           "bisect", "hashlib", "fractions", "operator", "datetime", "statistics")
"""Imported once by the zygote so each forked child finds them loaded: an import of typing alone costs more
than grading a typical problem. Nothing leaks between jobs: each child changes only its own copy."""
MAX_FDS = 8

try:  # imported as a module (tests); in the sandbox, sandbox.py prepends the codec's source to this one
    from score_bench.harness.grading._sandbox_codec import (LineReader, ProtocolError, Unserialisable, decode, dumps,
                                                            encode, encode_safely, write_all)
except ImportError:
    pass


# ---------------------------------------------------------------- the program side

def program_child(job, payload):
    """Exec the untrusted program, then answer calls to its entry point until the checker hangs up."""
    call_fd, result_fd = 3, 4
    reader = LineReader(call_fd, job["max_message_bytes"])
    namespace = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        exec(compile(payload.decode("utf-8", "replace"), "<program>", "exec"), namespace)
        function = namespace.get(job["entry_point"])
        if not callable(function):
            raise NameError(f"the program defines no function {job['entry_point']!r}")
    except BaseException as err:  # noqa: BLE001 - any failure to load is the program's
        write_all(result_fd, dumps({"fail": _describe(err)}))
        os._exit(1)
    write_all(result_fd, dumps({"ready": True}))
    while True:
        line = reader.read()
        if line is None:
            os._exit(0)
        call = json.loads(line)
        try:
            result = {"r": encode_safely(function(*decode(call["a"]), **decode(call["k"])))}
        except BaseException as err:  # noqa: BLE001 - reported to the checker as the call's exception
            base = next((c.__name__ for c in type(err).__mro__ if getattr(builtins, c.__name__, None) is c), "")
            result = {"e": [type(err).__name__, str(err)[:1000], _describe(err), base]}
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - the program may have replaced or closed stdout
            pass
        write_all(result_fd, dumps(result))


def _describe(err):
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return text[-1500:]


# ---------------------------------------------------------------- the checker side

class CandidateGone(BaseException):
    """The program stopped answering (exited, crashed, was killed): no test code may swallow this."""


class CandidateError(Exception):
    """The program raised an exception that is not a builtin one."""


class Candidate:
    """Stands in for the function under test inside trusted test code; every call crosses to the program."""

    def __init__(self, name, call_fd, reader):
        self.__name__ = name
        self.call_fd, self.reader = call_fd, reader
        self.calls = self.answered = 0
        self.gone = self.protocol = self.argument_error = self.ready = self.load_error = None
        self.last = ""

    def await_ready(self):
        """Read the program's first message once: True when it loaded, else load_error says why not."""
        if self.ready is None:
            try:
                first = self.reader.read()
                hello = json.loads(first) if first is not None else {}
            except Exception as err:  # noqa: BLE001 - garbage before the first call is the program's
                hello = {"fail": f"malformed first message ({type(err).__name__})"}
            self.ready = isinstance(hello, dict) and hello.get("ready") is True
            if not self.ready:
                failure = hello.get("fail") if isinstance(hello, dict) else None
                self.load_error = str(failure or "the program exited before loading")[-1500:]
        return self.ready

    def __call__(self, *args, **kwargs):
        if not self.await_ready():
            raise CandidateGone(self.load_error)
        if self.gone or self.protocol:
            raise CandidateGone(self.gone or self.protocol)
        try:
            message = dumps({"a": encode(list(args), strict=True), "k": encode(kwargs, strict=True)})
        except Exception as err:
            self.argument_error = f"cannot pass the arguments of call {self.calls + 1} to the program: {err}"
            raise CandidateGone(self.argument_error) from None
        self.calls += 1
        shown = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
        self.last = f"{self.__name__}({', '.join(shown)})"
        try:
            write_all(self.call_fd, message)
            line = self.reader.read()
        except BrokenPipeError:
            line = None
        except ProtocolError as err:
            self.protocol = f"call {self.calls}: {err}"
            raise CandidateGone(self.protocol) from None
        if line is None:
            self.gone = f"the program stopped answering during call {self.calls}: {self.last}"
            raise CandidateGone(self.gone)
        try:
            answer = json.loads(line)
            if "r" in answer:
                value = decode(answer["r"])
            else:
                name, text, remote, base = (str(part) for part in answer["e"])
        except Exception as err:  # malformed JSON, bad tags, RecursionError, huge int literals
            self.protocol = f"call {self.calls}: malformed answer ({type(err).__name__})"
            raise CandidateGone(self.protocol) from None
        self.answered += 1
        if "r" in answer:
            self.last += f" returned {_short(value)}"
            return value
        self.last += f" raised {name}: {text[:200]}\n{remote[-600:]}"
        kind = getattr(builtins, base, None)  # the nearest builtin class, so `except ValueError` still works
        if isinstance(kind, type) and issubclass(kind, Exception) and not issubclass(kind, Warning):
            try:
                error = kind(f"{name}: {text}" if name != base else text)
            except Exception:  # noqa: BLE001 - constructors with required arguments (UnicodeError, ...)
                error = CandidateError(f"{name}: {text}")
            raise error
        raise CandidateError(f"{name}: {text}")


def _short(value, limit=300):
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - ints past the str-conversion limit, deep nesting
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[:limit] + "..."


def checker_child(job, payload):
    """Run the tests against a Candidate proxy and write one report line to fd 5."""
    call_fd, result_fd, report_fd = 3, 4, 5
    spec = json.loads(payload)
    reader = LineReader(result_fd, job["max_message_bytes"])
    candidate = Candidate(spec["entry_point"], call_fd, reader)
    report = {"outcome": "passed", "detail": ""}
    try:
        report.update(_run_checks(spec, candidate))
    except BaseException as err:  # noqa: BLE001 - never leave without a report
        report.update(outcome="test_error", detail=_describe(err))
    report.update(ready=candidate.ready is True, calls=candidate.calls, answered=candidate.answered)
    write_all(report_fd, dumps(report))
    os._exit(0)


def _run_checks(spec, candidate):
    """Compile the tests while the program loads, then wait for it to say ready (or why not), then check."""
    namespace = {"__name__": "__checker__"}
    setup_error = None
    try:
        exec(compile(spec["setup"], "<setup>", "exec"), namespace)
        namespace[spec["entry_point"]] = candidate
        exec(compile(spec["test"], "<test>", "exec"), namespace)  # top-level asserts may call it already
    except BaseException as err:  # noqa: BLE001
        setup_error = err
    if not candidate.await_ready():
        return {"outcome": "load_error", "detail": candidate.load_error}
    if setup_error is not None:
        return _judge(setup_error, candidate, spec, during_setup=True)
    check = namespace.get("check")
    try:
        if callable(check):
            check(candidate)
    except BaseException as err:  # noqa: BLE001
        return _judge(err, candidate, spec)
    if candidate.gone or candidate.protocol or candidate.argument_error:
        return _judge(None, candidate, spec)
    return {"outcome": "passed", "detail": f"{candidate.calls} calls answered"}


def _judge(err, candidate, spec, during_setup=False):
    """Which party failed: the program (wrong answer, crash, garbage) or the tests themselves."""
    if candidate.argument_error:
        return {"outcome": "argument", "detail": candidate.argument_error}
    if candidate.protocol:
        return {"outcome": "protocol", "detail": candidate.protocol}
    if candidate.gone:
        return {"outcome": "gone", "detail": candidate.gone}
    where = _test_line(err, spec)
    last = f"\nlast call: {candidate.last}" if candidate.last else ""
    if isinstance(err, AssertionError):
        message = f": {err}" if str(err) else ""
        return {"outcome": "assertion", "detail": f"AssertionError{message} at {where}{last}"}
    if during_setup and candidate.calls == 0:
        return {"outcome": "test_error", "detail": _describe(err)}
    return {"outcome": "exception", "detail": f"{type(err).__name__}: {str(err)[:300]} at {where}{last}"}


def _test_line(err, spec):
    frames = traceback.extract_tb(err.__traceback__) if err is not None else []
    for frame in reversed(frames):
        if frame.filename in ("<test>", "<setup>"):
            source = spec["test" if frame.filename == "<test>" else "setup"].splitlines()
            text = source[frame.lineno - 1].strip() if 0 < frame.lineno <= len(source) else ""
            return f"{frame.filename[1:-1]} line {frame.lineno}: {text[:300]}"
    return "an unknown line"


# ---------------------------------------------------------------- the zygote

def _set_limits(job):
    hard = [
        (resource.RLIMIT_AS, job["memory_bytes"]),
        (resource.RLIMIT_CPU, job["cpu_seconds"]),
        (resource.RLIMIT_NPROC, job["max_processes"]),
        (resource.RLIMIT_NOFILE, job["max_open_files"]),
        (resource.RLIMIT_FSIZE, job["max_file_bytes"]),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_MSGQUEUE, 0),
    ]
    for limit, value in hard:
        resource.setrlimit(limit, (value, value))


def _child(role, job, payload, fds, ctrl_fd, scratch):
    """In the forked child: own session, fds 0-5 laid out for the role, fresh scratch dir, limits; then run."""
    os.setsid()
    os.close(ctrl_fd)
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]  # above 0-5, so no dup2 below clobbers a source
    null = fcntl.fcntl(os.open("/dev/null", os.O_RDWR), fcntl.F_DUPFD, 10)
    layout = {0: null}
    if role == "program":  # fds: call_r, result_w, output_w
        layout.update({1: high[2], 2: high[2], 3: high[0], 4: high[1]})
    else:  # fds: call_w, result_r, report_w, output_w
        layout.update({1: high[3], 2: high[3], 3: high[0], 4: high[1], 5: high[2]})
    for target, source in layout.items():
        os.dup2(source, target)
    os.closerange(max(layout) + 1, 1 << 16)
    workdir = os.path.join(scratch, "job")
    os.mkdir(workdir, 0o700)
    os.chdir(workdir)
    os.environ["HOME"] = os.environ["TMPDIR"] = workdir
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _set_limits(job)
    (program_child if role == "program" else checker_child)(job, payload)


def _reap_everything(pid):
    """Kill and reap every process but this one. As pid 1 of the namespace, kill(-1) reaches them all, and
    once waitpid reports no children none can remain (each process descends from pid 1)."""
    strays = 0
    while True:
        try:
            os.kill(-1, signal.SIGKILL) if os.getpid() == 1 else os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            while True:
                reaped, _ = os.waitpid(-1, 0)
                strays += reaped != pid
        except ChildProcessError:
            return strays


def _wipe(path):
    """Empty the scratch directory; False when something could not be removed (the sandbox is then retired)."""
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files + dirs:
            full = os.path.join(root, name)
            try:
                os.chmod(root, 0o700)
                if os.path.isdir(full) and not os.path.islink(full):
                    os.rmdir(full)
                else:
                    os.unlink(full)
            except OSError:
                pass
    return not os.listdir(path)


class Control:
    """The zygote's end of the control socket: newline-framed JSON, payloads and fds from the grader."""

    def __init__(self, sock):
        self.sock, self.buf, self.fds = sock, bytearray(), []

    def _fill(self):
        data, fds, _, _ = socket.recv_fds(self.sock, 1 << 16, MAX_FDS)
        self.fds.extend(fds)
        self.buf += data
        return bool(data)

    def message(self):
        """The next (header, payload, fds), or None when the grader has gone."""
        while b"\n" not in self.buf:
            if not self._fill():
                return None
        end = self.buf.index(b"\n")
        header = json.loads(bytes(self.buf[:end]))
        del self.buf[:end + 1]
        size = header.get("size", 0)
        while len(self.buf) < size:
            if not self._fill():
                return None
        payload, fds = bytes(self.buf[:size]), self.fds[:header.get("nfds", 0)]
        del self.buf[:size]
        del self.fds[:len(fds)]
        return header, payload, fds

    def send(self, obj):
        self.sock.sendall(dumps(obj))


def _non_dumpable():
    """Deny ptrace and /proc/1/mem to the program's processes (same uid): PR_SET_DUMPABLE = 0."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def _run_job(role, control, header, payload, fds, scratch):
    pid = os.fork()
    if pid == 0:
        try:
            _child(role, header, payload, fds, control.sock.fileno(), scratch)
        finally:
            os._exit(70)
    for fd in fds:
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    deadline = time.monotonic() + header["wall_seconds"] + 2.0  # the grader's own deadline comes first
    status, stopped = None, None
    while status is None:
        ready, _, _ = select.select([pidfd, control.sock], [], [], max(0.0, deadline - time.monotonic()))
        if pidfd in ready:
            status = os.waitpid(pid, 0)[1]
        elif control.sock in ready:
            message = control.message()
            if message is None:  # the grader has gone: take everything down with us
                _reap_everything(pid)
                sys.exit(0)
            if message[0].get("op") == "kill":
                finished, code = os.waitpid(pid, os.WNOHANG)
                if finished:  # it ended on its own just before the grader asked
                    status = code
                else:
                    stopped = stopped or "grader"
                    os.kill(pid, signal.SIGKILL)
        else:
            stopped = stopped or "deadline"
            os.kill(pid, signal.SIGKILL)
    os.close(pidfd)
    strays = _reap_everything(pid)
    clean = _wipe(scratch)
    control.send({"op": "done", "exit": os.waitstatus_to_exitcode(status), "stopped": stopped,
                  "strays": strays, "clean": clean})


WARM_UP = '''
from typing import List, Dict, Tuple, Optional
import math
def f(numbers: List[float], pairs: Dict[str, Tuple[int, ...]], flag: Optional[bool] = None) -> List[float]:
    """A docstring."""
    return sorted(set(numbers)) + [math.fabs(x) for x in numbers if x > 0.5 and str(x)]
def check(candidate):
    assert candidate([1.0, 2.0], {}) == [1.0, 2.0, 1.0, 2.0], "message"
    assert abs(candidate([0.25], {"a": (1, 2)})[0] - 0.25) < 1e-6
check(f)
'''


def _warm_up():
    """Load what children need and freeze it: forked children then share these pages instead of copying
    them (the garbage collector would otherwise touch every object), which makes each job cheaper."""
    import gc

    for name in PRELOAD:
        __import__(name)
    for _ in range(2):
        exec(compile(WARM_UP, "<warm-up>", "exec"), {"__name__": "__warm_up__"})
        decode(json.loads(dumps({"r": encode([1, (2.5, "x"), {3: {4}}, float("nan"), 1 << 70])}))["r"])
    gc.collect()
    gc.freeze()


def main(role, ctrl_fd, scratch):
    os.closerange(3, ctrl_fd)
    os.closerange(ctrl_fd + 1, 1 << 16)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _non_dumpable()
    _warm_up()
    control = Control(socket.socket(fileno=ctrl_fd))
    control.send({"op": "ready", "pid": os.getpid()})
    while True:
        message = control.message()
        if message is None:
            return
        header, payload, fds = message
        if header.get("op") == "run":
            _run_job(role, control, header, payload, fds, scratch)
        else:  # a kill that crossed a finished job: nothing to stop
            for fd in fds:
                os.close(fd)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
