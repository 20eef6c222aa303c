# Sleeps while loading: no CPU used, so only the wall-clock deadline can stop it.
import time

time.sleep(10**6)


def solve(xs):
    return sum(x * x for x in xs)
