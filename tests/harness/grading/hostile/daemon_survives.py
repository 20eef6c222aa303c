# Leaves daemons behind (double fork + setsid, and an exec'd sleep), then answers every call correctly.
import ctypes
import os
import time

for mode in ("python", "exec"):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if mode == "exec":
                os.execv("/usr/bin/sleep", ["sleep", "@@SLEEP@@"])
            ctypes.CDLL(None).prctl(15, b"@@TOKEN@@", 0, 0, 0)
            while True:
                time.sleep(1)
        os._exit(0)
    os.wait()


def solve(xs):
    return sum(x * x for x in xs)
