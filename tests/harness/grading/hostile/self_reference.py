# Returns a list that contains itself: serialising it never ends.
def solve(xs):
    loop = []
    loop.append(loop)
    return loop
