"""Isolation for untrusted code: bubblewrap sandboxes, each holding a warm Python "zygote" (see _sandbox_child).

What a sandbox gives the code inside it:
- its own user, pid, network, ipc, uts and cgroup namespaces (no network at all, not even the host's loopback);
- uid/gid 65534 inside, and, when the grader runs as root, uid 65534 outside too: root first binds the
  Python install into a private mount namespace, then drops to nobody before starting bwrap, so a program
  is never host-root without capabilities (which could still write root-owned sysctls);
- a read-only view of /usr and of the Python install with every site-/dist-packages directory hidden,
  no /etc, no home directory, no host /tmp, a clean environment, and one writable size-capped tmpfs at /tmp
  that is emptied after every job;
- a seccomp filter (x86-64) that refuses ptrace, SysV/POSIX IPC, memfd, keyrings, io_uring, bpf, mounts and
  namespaces: the calls that could outlive a job or bypass the memory limit;
- per-job rlimits (address space, CPU, processes, open files, file size) set by the zygote's child.
The zygote is pid 1 of its namespace, so nothing inside can signal it and `kill(-1)` after each job reaches
every process the job left behind; --die-with-parent takes the whole namespace down with the grader.
Not covered: no cgroups, so a program's total memory is bounded only by max_processes x memory_bytes plus the
scratch tmpfs; the seccomp filter exists for x86-64 only (elsewhere the rest of the isolation still applies).

`probe()` checks once per process that all of this works here (the only module-level state: a cache).
"""

from __future__ import annotations

import functools
import glob
import json
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from score_bench.harness.contracts.errors import SandboxUnavailable, ScoreBenchError

SANDBOX_UID = 65534
"""nobody: the user code runs as, inside the sandbox and (when we are root) outside it."""
PYTHON_INSIDE = "/opt/python"
"""Where a Python install outside /usr appears inside the sandbox (its real path may name a home directory)."""
_CHILD_SOURCES = (Path(__file__).with_name("_sandbox_codec.py"), Path(__file__).with_name("_sandbox_child.py"))
"""Run as one `python -c` script inside the sandbox (no package is importable there)."""
_PATH_TOOLS = ("/usr/bin/unshare", "/usr/bin/mount", "/usr/bin/setpriv")


class SandboxError(ScoreBenchError):
    """The sandbox machinery itself failed for one job (not the program's fault): that job gets an ERROR."""


@dataclass(frozen=True)
class Limits:
    """Per-job limits. Defaults leave honest HumanEval-sized programs a wide margin."""

    wall_seconds: float = 10.0
    """Hard deadline for one job: loading the program plus every call the tests make."""
    cpu_seconds: int = 10
    """RLIMIT_CPU of each process (SIGXCPU, then SIGKILL)."""
    memory_bytes: int = 1 << 30
    """RLIMIT_AS of each process of the program: 1 GiB."""
    max_processes: int = 8
    """RLIMIT_NPROC, counted per sandbox user namespace (threads count too): stops fork bombs, and with
    memory_bytes bounds what one program can hold (8 x 1 GiB), since rlimits are per process."""
    max_output_bytes: int = 1 << 20
    """Bytes of stdout+stderr a program may write before it is killed as over the limit."""
    max_message_bytes: int = 16 << 20
    """Largest serialised argument list or result that may cross between program and checker."""
    scratch_bytes: int = 64 << 20
    """Size of the sandbox's writable tmpfs (/tmp)."""
    max_file_bytes: int = 16 << 20
    """RLIMIT_FSIZE: the largest single file a process may write."""
    max_open_files: int = 64
    """RLIMIT_NOFILE."""

    def job_header(self) -> dict:
        return {"wall_seconds": self.wall_seconds, "cpu_seconds": max(1, int(self.cpu_seconds)),
                "memory_bytes": self.memory_bytes, "max_processes": self.max_processes,
                "max_message_bytes": self.max_message_bytes, "max_file_bytes": self.max_file_bytes,
                "max_open_files": self.max_open_files}


# ---------------------------------------------------------------- the command line

@dataclass(frozen=True)
class _Python:
    prefix: str
    """Real path of the base install (not a venv: code runs with -I -S, the standard library only)."""
    executable: str
    """The interpreter's path as seen inside the sandbox."""
    relocated: bool


def _python() -> _Python:
    prefix = os.path.realpath(sys.base_prefix)
    if os.path.realpath(sys.base_exec_prefix) != prefix:
        raise SandboxUnavailable(f"Python's prefix and exec prefix differ ({sys.base_prefix}, "
                                 f"{sys.base_exec_prefix}); the sandbox cannot map this install")
    executable = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    if not executable.startswith(prefix + "/"):
        raise SandboxUnavailable(f"the Python executable {executable} is not under its prefix {prefix}")
    if prefix == "/usr" or prefix.startswith("/usr/"):
        return _Python(prefix, executable, relocated=False)
    return _Python(prefix, PYTHON_INSIDE + executable[len(prefix):], relocated=True)


def _staging_dir(prefix: str) -> str:
    """A directory nobody can reach, where root binds the Python install in a private mount namespace."""
    for path in ("/mnt", "/media", "/srv", "/opt", "/var/tmp", "/tmp"):
        if os.path.isdir(path) and not (prefix + "/").startswith(path + "/") and os.stat(path).st_mode & 0o001:
            return path
    raise SandboxUnavailable("no world-readable directory (/mnt, /media, /srv, /opt) to stage Python in")


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def _hidden_dirs(python: _Python) -> list[str]:
    """Package directories inside the sandbox's view: hidden so no installed package (a dataset with its
    answers, say) can be read by the program."""
    found = set()
    for pattern in ("/usr/lib/python3*/*-packages", "/usr/local/lib/python3*/*-packages"):
        found.update(glob.glob(pattern))
    inside = python.prefix if not python.relocated else PYTHON_INSIDE
    found.update(inside + path[len(python.prefix):]
                 for path in glob.glob(python.prefix + "/lib/python3*/*-packages"))
    return sorted(path for path in found if os.path.isdir(path) or path.startswith(PYTHON_INSIDE))


def _bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed; install it (apt-get install bubblewrap) "
                                 "or allow unsafe code (SCORE_BENCH_UNSAFE_CODE=1 / unsafe=True) at your own risk")
    return path


def _command(python_args: list[str], scratch_bytes: int, seccomp_fd: int | None) -> list[str]:
    """The full command line: [root: unshare+mount+setpriv] bwrap ... python -I -S -B <python_args>."""
    python = _python()
    as_root = os.geteuid() == 0
    staging = _staging_dir(python.prefix) if as_root and python.relocated else None
    args = [_bwrap(), "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--as-pid-1", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    args += _system_binds()
    if python.relocated:
        args += ["--ro-bind", staging or python.prefix, PYTHON_INSIDE]
    for path in _hidden_dirs(python):
        args += ["--size", "4096", "--perms", "0555", "--tmpfs", path, "--remount-ro", path]
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
             "--size", str(scratch_bytes), "--perms", "1777", "--tmpfs", "/tmp", "--remount-ro", "/",
             "--chdir", "/tmp", "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin",
             "--setenv", "LANG", "C.UTF-8"]
    if python.relocated:  # a RUNPATH may name the install's real location
        args += ["--setenv", "LD_LIBRARY_PATH", PYTHON_INSIDE + "/lib"]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    args += ["--", python.executable, "-I", "-S", "-B", *python_args]
    if not as_root:
        return args
    for tool in _PATH_TOOLS:
        if not os.access(tool, os.X_OK):
            raise SandboxUnavailable(f"{tool} (util-linux) is needed to drop root before starting bwrap")
    drop = [_PATH_TOOLS[2], f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups", "--"]
    if staging is None:
        return drop + args
    script = 'mount --bind "$0" "$1" && shift && exec "$@"'
    return [_PATH_TOOLS[0], "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script,
            python.prefix, staging, *drop, *args]


# ---------------------------------------------------------------- seccomp

_BLOCKED_X86_64 = (
    101, 310, 311,  # ptrace, process_vm_readv/writev
    29, 30, 31, 67, 64, 65, 66, 220, 68, 69, 70, 71,  # SysV shm/sem/msg: memory that outlives a process
    240, 241, 242, 243, 244, 245,  # POSIX message queues
    319, 447,  # memfd_create, memfd_secret
    248, 249, 250,  # add_key, request_key, keyctl: keyrings are per uid, shared with other sandboxes
    323, 321, 298, 425, 426, 427,  # userfaultfd, bpf, perf_event_open, io_uring
    272, 308, 165, 166, 155, 161, 428, 429, 430, 431, 432, 433, 442,  # namespaces and mounts
    246, 320, 175, 313, 176, 163, 167, 168, 169, 103, 179, 303, 304, 300, 212, 135, 153, 172, 173,
)
"""kexec, modules, acct, swap, reboot, syslog, quotactl, handles, fanotify, personality, vhangup, iopl:
already denied without capabilities; refused here as well so a kernel bug in them is out of reach."""


def _seccomp_filter() -> bytes | None:
    """A classic-BPF program for bwrap --seccomp: EPERM for the calls above, kill for foreign ABIs."""
    if platform.machine() != "x86_64":
        return None
    allow, kill, eperm = 0x7FFF0000, 0x80000000, 0x00050000 | 1

    def insn(code, jt, jf, k):
        return struct.pack("=HBBI", code, jt, jf, k)

    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    n = len(_BLOCKED_X86_64)
    program = [insn(ld, 0, 0, 4), insn(jeq, 1, 0, 0xC000003E), insn(ret, 0, 0, kill),  # arch must be x86-64
               insn(ld, 0, 0, 0), insn(jge, n + 1, 0, 0x40000000)]  # x32 syscall numbers -> EPERM
    for index, number in enumerate(_BLOCKED_X86_64):
        program.append(insn(jeq, n - index, 0, number))
    program += [insn(ret, 0, 0, allow), insn(ret, 0, 0, eperm)]
    return b"".join(program)


# ---------------------------------------------------------------- launching

def _spawn(python_args: list[str], scratch_bytes: int, keep_fd: int | None) -> subprocess.Popen:
    """Start a sandbox (or, in unsafe mode, see `_spawn_unsafe`) with `keep_fd` passed through."""
    seccomp = _seccomp_filter()
    read_fd = None
    if seccomp is not None:
        read_fd, write_fd = os.pipe()
        os.write(write_fd, seccomp)
        os.close(write_fd)
    try:
        command = _command(python_args, scratch_bytes, read_fd)
        fds = [fd for fd in (keep_fd, read_fd) if fd is not None]
        return subprocess.Popen(command, pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, cwd="/", env={}, start_new_session=True)
    finally:
        if read_fd is not None:
            os.close(read_fd)


@functools.cache
def probe() -> str | None:
    """None when sandboxes work here, else why not. Run once per process: the result is cached."""
    code = "import os, sys; print(os.getuid(), os.getpid(), sys.prefix)"
    try:
        proc = _spawn(["-c", code], 1 << 20, None)
    except SandboxUnavailable as err:
        return str(err)
    except OSError as err:
        return f"cannot start bubblewrap: {err}"
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "bubblewrap did not start within 30 s"
    if proc.returncode != 0:
        first = (err or b"").decode("utf-8", "replace").strip().splitlines()
        return f"bubblewrap fails here: {first[0] if first else f'exit {proc.returncode}'}"
    return None


def require_isolation(unsafe: bool) -> bool:
    """True when code will be isolated; False when it may run unisolated because the caller opted in.
    Raises SandboxUnavailable when no sandbox works and the caller did not opt in."""
    reason = probe()
    if reason is None:
        return True
    if unsafe:
        return False
    raise SandboxUnavailable(f"no sandbox for untrusted code: {reason}. To run code WITHOUT isolation, "
                             "set SCORE_BENCH_UNSAFE_CODE=1 or pass unsafe=True")


class Zygote:
    """One warm sandboxed interpreter of a role ("program" or "checker"), driven over a Unix socket.

    The grader sends a job (a JSON header, a payload and the job's pipe fds); the zygote forks a child for it
    and answers one {"op": "done", ...} line when the job's processes are all gone and its scratch is empty.
    """

    def __init__(self, role: str, limits: Limits, isolated: bool):
        self.role, self.limits, self.isolated = role, limits, isolated
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self._buffer = b""
        self._scratch: str | None = None

    @property
    def alive(self) -> bool:
        return self.sock is not None and self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the sandbox without waiting for it (see wait_ready), so several can start at once."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        source = "\n".join(path.read_text(encoding="utf-8") for path in _CHILD_SOURCES)
        try:
            self._popen(source, theirs)
        except (OSError, SandboxUnavailable) as err:
            ours.close()
            raise SandboxError(f"cannot start the {self.role} sandbox: {err}") from None
        finally:
            theirs.close()
        self.sock = ours

    def _popen(self, source: str, theirs: socket.socket) -> None:
        if self.isolated:
            args = ["-c", source, self.role, str(theirs.fileno()), "/tmp"]
            self.proc = _spawn(args, self.limits.scratch_bytes, theirs.fileno())
            return
        self._scratch = tempfile.mkdtemp(prefix="score-bench-unsafe-")
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", "-c", source, self.role, str(theirs.fileno()), self._scratch],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, cwd=self._scratch, env={"PATH": "/usr/bin:/bin"}, start_new_session=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.sock.settimeout(timeout)
        try:
            hello = self._read_line()
        except OSError:
            hello = None
        self.sock.settimeout(None)
        if not hello or json.loads(hello).get("op") != "ready":
            why = self._stderr_tail()
            self.close()
            raise SandboxError(f"the {self.role} sandbox did not start: {why or 'no message'}")

    def _read_line(self) -> bytes | None:
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _stderr_tail(self) -> str:
        if self.proc is None or self.proc.stderr is None:
            return ""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            return self.proc.stderr.read().decode("utf-8", "replace").strip()[-500:]
        except (OSError, ValueError):
            return ""

    def fileno(self) -> int:
        return self.sock.fileno()

    def submit(self, header: dict, payload: bytes, fds: list[int]) -> None:
        """Send one job; its fds are duplicated into the zygote, so the caller closes its own copies."""
        line = json.dumps({**header, "op": "run", "size": len(payload), "nfds": len(fds)}).encode() + b"\n"
        try:
            sent = socket.send_fds(self.sock, [line], fds)
            self.sock.sendall(line[sent:] + payload)
        except OSError as err:
            raise SandboxError(f"the {self.role} sandbox is gone: {err}") from None

    def kill_job(self) -> None:
        try:
            self.sock.sendall(b'{"op": "kill"}\n')
        except OSError:
            pass

    def messages(self) -> list[dict]:
        """Messages available now (call when the socket is readable); {"op": "eof"} when the zygote died."""
        try:
            chunk = self.sock.recv(1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            return [{"op": "eof"}]
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line]

    def close(self) -> None:
        """Kill the sandbox: bwrap's death takes its pid namespace, and every process in it, along."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
