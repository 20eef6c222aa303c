# Tries to fill memory through the writable scratch tmpfs (a RAM-backed filesystem) with many files.
import os

written = 0
try:
    for i in range(10_000):
        with open(f"chunk{i}", "wb") as handle:
            handle.write(b"x" * (8 << 20))
        written += 8 << 20
except OSError:
    pass


def solve(xs):
    return written
