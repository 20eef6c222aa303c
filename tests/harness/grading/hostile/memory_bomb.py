# Allocates far past the memory limit while loading.
hog = bytearray(64 << 30)


def solve(xs):
    return sum(x * x for x in xs)
