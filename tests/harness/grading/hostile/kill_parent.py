# Kills its parent (the sandbox's pid 1) with SIGKILL and SIGTERM, then answers correctly.
import os
import signal

for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
    try:
        os.kill(os.getppid(), sig)
    except OSError:
        pass


def solve(xs):
    return sum(x * x for x in xs)
