# Returns a result far larger than the checker accepts.
def solve(xs):
    return "x" * (64 << 20)
